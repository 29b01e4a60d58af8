//! SAML response validation (`sso_acs::saml`), the AuthnRequest, and metadata both ways.
//!
//! Responses are signed by real XML-DSig implementations: libxmlsec1 (sso-acs's
//! `idp-signer`) and python signxml (lxml + cryptography). Every refusal is its own test,
//! asserting the specific `Refusal`; the wrapping attacks (XSW1–8 of "On Breaking SAML")
//! are built by manipulating genuinely signed responses.

use std::io::Read;

use base64::Engine;
use identity_shared::secret::SecretString;
use identity_shared::secrets::{self, SamlSpKeys, SecretKind};
use identity_tests::saml_idp::*;
use sso_acs::saml::idp_signer::{IdpSigner, SigAlg, Sign};
use sso_acs::saml::{self, MAX_ASSERTION_AGE_SECS, MAX_SKEW_SECS, Refusal, Sp};

// ------------------------------------------------------------------------------------------
// Accepted
// ------------------------------------------------------------------------------------------

#[test]
fn response_signed_by_xmlsec_is_accepted() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Response));
    let v = c.accept(&xml).expect("accepted");
    assert_eq!(v.email, ATTACKER);
    assert_eq!(v.name_id, ATTACKER);
    assert_eq!(v.in_response_to.as_deref(), Some(REQUEST_ID));
    assert_eq!(v.valid_until, NOW + LIFETIME);
    assert!(v.assertion_id.starts_with("_a"), "{}", v.assertion_id);
    assert_eq!(
        v.authn_context.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
    );
}

#[test]
fn assertion_signed_by_xmlsec_is_accepted() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    let v = c.accept(&xml).expect("accepted");
    assert_eq!(v.email, ATTACKER);
}

#[test]
fn response_and_assertion_signed_by_xmlsec_is_accepted() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Both));
    assert_eq!(xml.matches("<ds:Signature xmlns").count(), 2);
    let v = c.accept(&xml).expect("accepted");
    assert_eq!(v.email, ATTACKER);
    // The realistic size the benchmark measures (two signatures, seven attributes).
    assert!((4_000..12_000).contains(&xml.len()), "{} bytes", xml.len());
}

#[test]
fn email_is_lowercased_and_routing_reads_issuer_and_request() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec("Mallory@ACME.example", Sign::Assertion));
    let r = saml::routing(&xml).unwrap();
    assert_eq!(r.issuer, ENTITY_ID);
    assert_eq!(r.in_response_to.as_deref(), Some(REQUEST_ID));
    assert_eq!(c.accept(&xml).unwrap().email, "mallory@acme.example");
}

#[test]
fn rollover_accepts_either_registered_certificate() {
    let mut c = SamlCase::new();
    let next = IdpSigner::generate("next key").unwrap();
    c.idp.certificates = vec![next.certificate_base64(), c.signer.certificate_base64()];
    let xml = c.signed(&c.spec(ATTACKER, Sign::Both));
    assert_eq!(c.accept(&xml).unwrap().email, ATTACKER);
}

fn signxml_case(sign_response: bool) {
    let Some(python) = python_with_signxml() else {
        return;
    };
    let c = SamlCase::new();
    let (unsigned, ids) = c
        .signer
        .unsigned_response(&c.spec(ATTACKER, Sign::Response));
    let id = if sign_response {
        &ids.response
    } else {
        &ids.assertion
    };
    let signed = signxml_sign(&python, &c.signer, &unsigned, id);
    assert_eq!(signed.matches("SignatureValue>").count(), 2, "{signed}");
    let v = c.accept(&signed).expect("a signxml signature is accepted");
    assert_eq!(v.email, ATTACKER);
    assert_eq!(v.assertion_id, ids.assertion);
}

#[test]
fn response_signed_by_python_signxml_is_accepted() {
    signxml_case(true);
}

#[test]
fn assertion_signed_by_python_signxml_is_accepted() {
    signxml_case(false);
}

// ------------------------------------------------------------------------------------------
// Signature
// ------------------------------------------------------------------------------------------

#[test]
fn unsigned_response_is_refused() {
    let c = SamlCase::new();
    let (unsigned, _) = c
        .signer
        .unsigned_response(&c.spec(ATTACKER, Sign::Response));
    assert_eq!(c.accept(&unsigned).unwrap_err(), Refusal::NotSigned);
}

#[test]
fn signature_by_unregistered_key_with_its_certificate_in_keyinfo_is_refused() {
    let c = SamlCase::new();
    let intruder = IdpSigner::generate("acme.okta.example").unwrap();
    let xml = intruder.response(&c.spec(VICTIM, Sign::Both)).unwrap();
    assert!(
        xml.contains(&intruder.certificate_base64()),
        "the certificate rides in KeyInfo"
    );
    assert_eq!(c.accept(&xml).unwrap_err(), Refusal::UntrustedSignature);
}

#[test]
fn altered_signed_content_is_refused() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    let altered = xml.replacen(&format!(">{ATTACKER}<"), &format!(">{VICTIM}<"), 1);
    assert_ne!(altered, xml);
    assert_eq!(c.accept(&altered).unwrap_err(), Refusal::UntrustedSignature);
}

#[test]
fn empty_certificate_list_is_refused() {
    let mut c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Both));
    c.idp.certificates.clear();
    assert_eq!(c.accept(&xml).unwrap_err(), Refusal::UntrustedSignature);
    // Unparseable registered certificates count as none.
    c.idp.certificates = vec!["bm90IGEgY2VydGlmaWNhdGU=".into()];
    assert_eq!(c.accept(&xml).unwrap_err(), Refusal::UntrustedSignature);
}

#[test]
fn sha1_signature_is_refused() {
    let c = SamlCase::new();
    let (unsigned, ids) = c
        .signer
        .unsigned_response(&c.spec(ATTACKER, Sign::Assertion));
    let xml = c
        .signer
        .sign_element(&unsigned, &ids.assertion, SigAlg::RsaSha1)
        .unwrap();
    assert!(xml.contains("xmldsig#rsa-sha1") && xml.contains("xmldsig#sha1"));
    // The signature itself is genuine: only the algorithm pin refuses it.
    assert!(c.xmlsec_accepts_signatures(&xml));
    assert_eq!(c.accept(&xml).unwrap_err(), Refusal::WeakAlgorithm);
}

#[test]
fn sha1_digest_under_rsa_sha256_is_refused() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    let downgraded = xml.replace(
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2000/09/xmldsig#sha1",
    );
    assert_eq!(c.accept(&downgraded).unwrap_err(), Refusal::WeakAlgorithm);
}

#[test]
fn xslt_or_xpath_transform_is_refused_before_xmlsec_runs_it() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    let xpath = xml.replace(
        r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
        r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>1</ds:XPath></ds:Transform>"#,
    );
    assert_ne!(xpath, xml);
    assert_eq!(c.accept(&xpath).unwrap_err(), Refusal::WeakAlgorithm);
}

// ------------------------------------------------------------------------------------------
// XML signature wrapping, "On Breaking SAML" (Somorovsky et al., 2012)
// ------------------------------------------------------------------------------------------

/// The attacker holds a genuine response for `ATTACKER`; `wrap` turns it into one that
/// claims `VICTIM`. Returns the manipulated XML after checking it is a real manipulation.
fn wrapped(c: &SamlCase, sign: Sign, wrap: fn(&str) -> String) -> String {
    let xml = c.signed(&c.spec(ATTACKER, sign));
    assert!(c.accept(&xml).is_ok(), "the original is valid");
    let attack = wrap(&xml);
    assert!(
        attack.contains(VICTIM),
        "the wrapped content names the victim"
    );
    attack
}

#[test]
fn xsw1_response_copy_inside_signature_is_refused() {
    let c = SamlCase::new();
    let attack = wrapped(&c, Sign::Response, xsw1);
    // (The enveloped transform drops the Signature, and the copy with it: libxmlsec1 alone
    // would fail this one too. XSW2–5 keep a signature that still verifies.)
    assert_eq!(c.accept(&attack).unwrap_err(), Refusal::SignatureWrapping);
}

#[test]
fn xsw2_response_copy_before_detached_signature_is_refused() {
    let c = SamlCase::new();
    let attack = wrapped(&c, Sign::Response, xsw2);
    assert!(
        c.xmlsec_accepts_signatures(&attack),
        "the signature still verifies"
    );
    assert_eq!(c.accept(&attack).unwrap_err(), Refusal::SignatureWrapping);
}

#[test]
fn xsw3_evil_assertion_before_signed_one_is_refused() {
    let c = SamlCase::new();
    let attack = wrapped(&c, Sign::Assertion, xsw3);
    assert!(
        c.xmlsec_accepts_signatures(&attack),
        "the signature still verifies"
    );
    assert_eq!(c.accept(&attack).unwrap_err(), Refusal::SignatureWrapping);
}

#[test]
fn xsw4_signed_assertion_inside_evil_assertion_is_refused() {
    let c = SamlCase::new();
    let attack = wrapped(&c, Sign::Assertion, xsw4);
    assert!(
        c.xmlsec_accepts_signatures(&attack),
        "the signature still verifies"
    );
    assert_eq!(c.accept(&attack).unwrap_err(), Refusal::SignatureWrapping);
}

#[test]
fn xsw5_altered_assertion_with_unsigned_copy_appended_is_refused() {
    let c = SamlCase::new();
    let attack = wrapped(&c, Sign::Assertion, xsw5);
    assert!(
        c.xmlsec_accepts_signatures(&attack),
        "the signature still verifies"
    );
    assert_eq!(c.accept(&attack).unwrap_err(), Refusal::SignatureWrapping);
}

#[test]
fn xsw6_altered_assertion_with_copy_inside_signature_is_refused() {
    let c = SamlCase::new();
    let attack = wrapped(&c, Sign::Assertion, xsw6);
    // (As in XSW1, the copy sits inside the Signature the enveloped transform removes;
    // XSW7 and XSW8 repeat the signed ID, which samael's ID registration also rejects.)
    assert_eq!(c.accept(&attack).unwrap_err(), Refusal::SignatureWrapping);
}

#[test]
fn xsw7_evil_assertion_in_extensions_is_refused() {
    let c = SamlCase::new();
    let attack = wrapped(&c, Sign::Assertion, xsw7);
    assert_eq!(c.accept(&attack).unwrap_err(), Refusal::SignatureWrapping);
}

#[test]
fn xsw8_altered_assertion_with_original_in_signature_object_is_refused() {
    let c = SamlCase::new();
    let attack = wrapped(&c, Sign::Assertion, xsw8);
    assert_eq!(c.accept(&attack).unwrap_err(), Refusal::SignatureWrapping);
}

#[test]
fn comment_inside_name_id_reads_the_full_signed_text() {
    let c = SamlCase::new();
    let signed_name = "user@evil.com.example.com";
    let xml = c.signed(&c.spec(signed_name, Sign::Assertion));
    let truncating = xml.replacen(
        &format!(">{signed_name}</saml2:NameID>"),
        ">user@evil.com<!---->.example.com</saml2:NameID>",
        1,
    );
    assert_ne!(truncating, xml);
    // Comments are outside the signature (exclusive c14n without comments), so it still
    // verifies; the identity read is the full text the IdP signed, never "user@evil.com".
    let v = c
        .accept(&truncating)
        .expect("accepted with the full identity");
    assert_eq!(v.name_id, signed_name);
    assert_eq!(v.email, signed_name);
}

#[test]
fn two_assertions_are_refused() {
    let c = SamlCase::new();
    let (unsigned, ids) = c
        .signer
        .unsigned_response(&c.spec(ATTACKER, Sign::Response));
    let two = with_second_assertion(&unsigned, VICTIM);
    let xml = c
        .signer
        .sign_element(&two, &ids.response, SigAlg::RsaSha256)
        .unwrap();
    assert!(c.xmlsec_accepts_signatures(&xml));
    assert_eq!(c.accept(&xml).unwrap_err(), Refusal::AssertionCount);
}

#[test]
fn encrypted_assertion_is_refused() {
    let c = SamlCase::new();
    let (unsigned, ids) = c
        .signer
        .unsigned_response(&c.spec(ATTACKER, Sign::Response));
    let with_encrypted = insert_before(
        &unsigned,
        "</saml2p:Response>",
        r#"<saml2:EncryptedAssertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/></saml2:EncryptedAssertion>"#,
    );
    let xml = c
        .signer
        .sign_element(&with_encrypted, &ids.response, SigAlg::RsaSha256)
        .unwrap();
    assert_eq!(c.accept(&xml).unwrap_err(), Refusal::AssertionCount);
}

// ------------------------------------------------------------------------------------------
// Addressing, time, request
// ------------------------------------------------------------------------------------------

#[test]
fn wrong_audience_is_refused() {
    let c = SamlCase::new();
    let mut spec = c.spec(ATTACKER, Sign::Both);
    spec.audience = "https://other-sp.example.com/saml/metadata".into();
    assert_eq!(
        c.accept(&c.signed(&spec)).unwrap_err(),
        Refusal::WrongAudience
    );
}

#[test]
fn wrong_destination_is_refused() {
    let c = SamlCase::new();
    let mut spec = c.spec(ATTACKER, Sign::Response);
    spec.destination = "https://other-sp.example.com/saml/acs".into();
    assert_eq!(
        c.accept(&c.signed(&spec)).unwrap_err(),
        Refusal::WrongDestination
    );
}

#[test]
fn signed_response_without_destination_is_refused() {
    let c = SamlCase::new();
    let (unsigned, ids) = c
        .signer
        .unsigned_response(&c.spec(ATTACKER, Sign::Response));
    let no_destination = unsigned.replacen(&format!(r#" Destination="{}""#, c.sp.acs_url), "", 1);
    assert_ne!(no_destination, unsigned);
    let xml = c
        .signer
        .sign_element(&no_destination, &ids.response, SigAlg::RsaSha256)
        .unwrap();
    assert_eq!(c.accept(&xml).unwrap_err(), Refusal::WrongDestination);
}

#[test]
fn wrong_recipient_is_refused() {
    let c = SamlCase::new();
    let mut spec = c.spec(ATTACKER, Sign::Assertion);
    spec.recipient = "https://other-sp.example.com/saml/acs".into();
    assert_eq!(
        c.accept(&c.signed(&spec)).unwrap_err(),
        Refusal::WrongRecipient
    );
}

#[test]
fn wrong_issuer_is_refused() {
    let c = SamlCase::new();
    let mut spec = c.spec(ATTACKER, Sign::Both);
    spec.issuer = "http://www.okta.com/exk1other".into();
    assert_eq!(
        c.accept(&c.signed(&spec)).unwrap_err(),
        Refusal::WrongIssuer
    );
}

#[test]
fn expired_assertion_is_refused() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    let expiry = NOW + LIFETIME;
    assert!(
        c.post(&xml, Some(REQUEST_ID), expiry + 179).is_ok(),
        "within skew"
    );
    assert_eq!(
        c.post(&xml, Some(REQUEST_ID), expiry + 180).unwrap_err(),
        Refusal::Expired
    );
}

/// An assertion is refused once its IssueInstant is 5 minutes plus the skew old, even when
/// its NotOnOrAfter (and the confirmation's) is hours away.
#[test]
fn assertion_older_than_five_minutes_is_refused_whatever_its_not_on_or_after() {
    let c = SamlCase::new();
    let mut spec = c.spec(ATTACKER, Sign::Both);
    spec.lifetime_secs = 8 * 3600;
    let xml = c.signed(&spec);
    let bound = NOW + MAX_ASSERTION_AGE_SECS + MAX_SKEW_SECS;
    let ok = c
        .post(&xml, Some(REQUEST_ID), bound - 1)
        .expect("within the bound");
    assert!(
        ok.valid_until <= bound,
        "the replay record need not outlive the bound"
    );
    assert_eq!(
        c.post(&xml, Some(REQUEST_ID), bound).unwrap_err(),
        Refusal::TooOld
    );
    assert_eq!(
        c.post(&xml, Some(REQUEST_ID), NOW + 3 * 3600).unwrap_err(),
        Refusal::TooOld
    );
}

/// An IssueInstant ahead of now beyond the skew is refused as not yet valid.
#[test]
fn assertion_issued_in_the_future_beyond_skew_is_refused() {
    let c = SamlCase::new();
    let mut spec = c.spec(ATTACKER, Sign::Both);
    spec.now = NOW + 181;
    spec.lifetime_secs = 3600;
    let xml = c.signed(&spec);
    assert_eq!(
        c.post(&xml, Some(REQUEST_ID), NOW).unwrap_err(),
        Refusal::NotYetValid
    );
}

#[test]
fn not_yet_valid_beyond_skew_is_refused() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    assert_eq!(
        c.post(&xml, Some(REQUEST_ID), NOW - 181).unwrap_err(),
        Refusal::NotYetValid
    );
}

#[test]
fn not_yet_valid_within_180s_skew_is_accepted() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    assert!(c.post(&xml, Some(REQUEST_ID), NOW - 180).is_ok());
}

#[test]
fn in_response_to_mismatch_is_refused() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Both));
    assert_eq!(
        c.post(&xml, Some("_another_request"), NOW + 5).unwrap_err(),
        Refusal::InResponseToMismatch
    );
}

#[test]
fn unsolicited_response_is_refused_when_not_allowed() {
    let c = SamlCase::new();
    let mut spec = c.spec(ATTACKER, Sign::Both);
    spec.in_response_to = None;
    assert_eq!(
        c.post(&c.signed(&spec), None, NOW + 5).unwrap_err(),
        Refusal::UnsolicitedNotAllowed
    );
}

#[test]
fn unsolicited_response_is_accepted_when_allowed() {
    let mut c = SamlCase::new();
    c.idp.allow_idp_initiated = true;
    let mut spec = c.spec(ATTACKER, Sign::Both);
    spec.in_response_to = None;
    let v = c.post(&c.signed(&spec), None, NOW + 5).expect("accepted");
    assert_eq!(v.in_response_to, None);
    assert_eq!(v.email, ATTACKER);
}

#[test]
fn unsolicited_response_carrying_in_response_to_is_refused() {
    let mut c = SamlCase::new();
    c.idp.allow_idp_initiated = true;
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    assert_eq!(
        c.post(&xml, None, NOW + 5).unwrap_err(),
        Refusal::InResponseToMismatch
    );
}

#[test]
fn status_other_than_success_is_refused() {
    let c = SamlCase::new();
    let (unsigned, _) = c
        .signer
        .unsigned_response(&c.spec(ATTACKER, Sign::Response));
    let failed = unsigned.replace(
        "urn:oasis:names:tc:SAML:2.0:status:Success",
        "urn:oasis:names:tc:SAML:2.0:status:Responder",
    );
    assert_eq!(c.accept(&failed).unwrap_err(), Refusal::StatusNotSuccess);
}

// ------------------------------------------------------------------------------------------
// MFA
// ------------------------------------------------------------------------------------------

#[test]
fn mfa_missing_when_required_is_refused() {
    let mut c = SamlCase::new();
    c.idp.require_mfa = true;
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    let refusal = c.accept(&xml).unwrap_err();
    assert_eq!(refusal, Refusal::MfaRequired);
    assert!(refusal.user_message().contains("multi-factor"));
}

#[test]
fn mfa_context_from_the_default_list_is_accepted() {
    let mut c = SamlCase::new();
    c.idp.require_mfa = true;
    let mut spec = c.spec(ATTACKER, Sign::Assertion);
    spec.authn_context = Some("http://schemas.microsoft.com/claims/multipleauthn".into());
    let v = c.accept(&c.signed(&spec)).expect("accepted");
    assert_eq!(
        v.authn_context.as_deref(),
        Some("http://schemas.microsoft.com/claims/multipleauthn")
    );
}

#[test]
fn mfa_contexts_of_the_idp_replace_the_default_list() {
    let mut c = SamlCase::new();
    c.idp.require_mfa = true;
    c.idp.mfa_contexts = vec!["urn:acme:mfa:hardware-key".into()];
    let mut spec = c.spec(ATTACKER, Sign::Assertion);
    spec.authn_context = Some("urn:acme:mfa:hardware-key".into());
    assert!(c.accept(&c.signed(&spec)).is_ok());
    spec.authn_context = Some("https://refeds.org/profile/mfa".into());
    assert_eq!(
        c.accept(&c.signed(&spec)).unwrap_err(),
        Refusal::MfaRequired
    );
}

// ------------------------------------------------------------------------------------------
// Input
// ------------------------------------------------------------------------------------------

#[test]
fn doctype_with_entities_is_refused() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    let body = xml.split_once("?>").map(|(_, b)| b).unwrap();
    let with_dtd = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE saml2p:Response [<!ENTITY who "{VICTIM}">]>{body}"#
    );
    assert_eq!(c.accept(&with_dtd).unwrap_err(), Refusal::Doctype);
    assert_eq!(
        saml::validate(&with_dtd, &c.idp, &c.sp, Some(REQUEST_ID), NOW + 5).unwrap_err(),
        Refusal::Doctype
    );
    assert_eq!(saml::routing(&with_dtd).unwrap_err(), Refusal::Doctype);
}

#[test]
fn encoding_other_than_utf8_is_refused() {
    let c = SamlCase::new();
    let xml = c.signed(&c.spec(ATTACKER, Sign::Assertion));
    assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#));
    let latin1 = xml.replacen(r#"encoding="UTF-8""#, r#"encoding="ISO-8859-1""#, 1);
    assert_eq!(c.accept(&latin1).unwrap_err(), Refusal::UnsupportedEncoding);
    let utf16: Vec<u8> = xml.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let posted = base64::engine::general_purpose::STANDARD.encode(utf16);
    assert_eq!(
        saml::decode_post(&posted).unwrap_err(),
        Refusal::UnsupportedEncoding
    );
}

#[test]
fn every_refusal_has_a_reason_and_a_user_message() {
    use Refusal::*;
    for r in [
        Malformed,
        Doctype,
        UnsupportedEncoding,
        NotSigned,
        UntrustedSignature,
        WeakAlgorithm,
        SignatureWrapping,
        AssertionCount,
        WrongIssuer,
        WrongDestination,
        WrongRecipient,
        WrongAudience,
        Expired,
        NotYetValid,
        InResponseToMismatch,
        UnknownRequest,
        UnsolicitedNotAllowed,
        MfaRequired,
        NoEmail,
        StatusNotSuccess,
        UnknownIdp,
        Replayed,
    ] {
        assert!(!r.reason().is_empty());
        assert!(r.user_message().ends_with('.'), "{r:?}");
    }
}

// ------------------------------------------------------------------------------------------
// AuthnRequest (HTTP-Redirect) and SP metadata
// ------------------------------------------------------------------------------------------

fn sp_keys(with_previous: bool) -> SamlSpKeys {
    let current = secrets::generate(SecretKind::SamlSp).unwrap();
    let mut doc = serde_json::json!({ "current": current });
    if with_previous {
        doc["previous"] = secrets::generate(SecretKind::SamlSp).unwrap();
    }
    SamlSpKeys::parse(&SecretString::new(doc.to_string())).unwrap()
}

fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').unwrap().1;
    serde_urlencoded::from_str(query).unwrap()
}

fn inflate(saml_request: &str) -> String {
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(saml_request)
        .unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&deflated[..])
        .read_to_string(&mut xml)
        .unwrap();
    xml
}

#[test]
fn authn_request_redirect_carries_the_deflated_request_and_relay_state() {
    let c = SamlCase::new();
    let keys = sp_keys(false);
    let (id, url) = saml::authn_request_redirect(&c.idp, &c.sp, &keys, "r=/apps", NOW).unwrap();
    assert!(id.starts_with('_') && id.len() > 20);
    assert!(url.starts_with(&format!("{}?SAMLRequest=", c.idp.sso_url)));
    let pairs = query_pairs(&url);
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["SAMLRequest", "RelayState"],
        "unsigned: no SigAlg/Signature"
    );
    assert_eq!(pairs[1].1, "r=/apps");
    let xml = inflate(&pairs[0].1);
    for part in [
        format!(r#"ID="{id}""#),
        r#"IssueInstant="2026-01-01T00:00:00Z""#.to_string(),
        format!(r#"Destination="{}""#, c.idp.sso_url),
        format!(r#"AssertionConsumerServiceURL="{}""#, c.sp.acs_url),
        r#"ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST""#.to_string(),
        format!("<saml:Issuer>{}</saml:Issuer>", c.sp.entity_id),
        r#"Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" AllowCreate="true""#
            .to_string(),
    ] {
        assert!(xml.contains(&part), "{part} in {xml}");
    }
    // Another request gets another ID.
    let (id2, _) = saml::authn_request_redirect(&c.idp, &c.sp, &keys, "", NOW).unwrap();
    assert_ne!(id, id2);
}

#[test]
fn signed_authn_request_verifies_with_openssl_against_the_sp_certificate() {
    let mut c = SamlCase::new();
    c.idp.want_authn_requests_signed = true;
    c.idp.sso_url = "https://accounts.google.example/o/saml2/idp?idpid=C01abcd23".into();
    let keys = sp_keys(false);
    let (_, url) =
        saml::authn_request_redirect(&c.idp, &c.sp, &keys, "state with spaces&=", NOW).unwrap();
    assert!(
        url.starts_with("https://accounts.google.example/o/saml2/idp?idpid=C01abcd23&SAMLRequest=")
    );
    // What the binding signs: the query string as sent, up to "&Signature=".
    let ours = url.split_once("idpid=C01abcd23&").unwrap().1;
    let (signed_part, signature) = ours.split_once("&Signature=").unwrap();
    assert!(signed_part.starts_with("SAMLRequest="));
    assert!(signed_part.contains("&RelayState=") && signed_part.contains("&SigAlg="));
    let pairs = query_pairs(&url);
    let sig_alg = &pairs.iter().find(|(k, _)| k == "SigAlg").unwrap().1;
    assert_eq!(sig_alg, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
    let signature_b64 = &pairs.iter().find(|(k, _)| k == "Signature").unwrap().1;
    assert!(!signature.is_empty());
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_b64)
        .unwrap();

    let cert = openssl::x509::X509::from_pem(keys.current.certificate_pem.as_bytes()).unwrap();
    let public = cert.public_key().unwrap();
    let verify = |data: &[u8]| {
        let mut v =
            openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap();
        v.update(data).unwrap();
        v.verify(&signature).unwrap()
    };
    assert!(verify(signed_part.as_bytes()), "the signature verifies");
    assert!(!verify(
        signed_part
            .replace("RelayState=state", "RelayState=xtate")
            .as_bytes()
    ));
}

#[test]
fn sp_metadata_lists_acs_and_current_and_previous_certificates() {
    let sp = Sp::from_base_url("https://id.example.com/");
    let keys = sp_keys(true);
    let xml = saml::sp_metadata(&sp, &keys);
    // Read back with samael's metadata model (an independent reader).
    let md: samael::metadata::EntityDescriptor = xml.parse().expect("valid metadata");
    assert_eq!(
        md.entity_id.as_deref(),
        Some("https://id.example.com/sso/metadata")
    );
    let sso = &md.sp_sso_descriptors.as_ref().unwrap()[0];
    assert_eq!(sso.want_assertions_signed, Some(true));
    assert!(sso.authn_requests_signed.is_some());
    let acs = &sso.assertion_consumer_services[0];
    assert_eq!(acs.location, "https://id.example.com/sso/acs");
    // Single Logout, both bindings, at /sso/slo.
    let slo: Vec<(&str, &str)> = sso
        .single_logout_services
        .as_ref()
        .expect("SingleLogoutService")
        .iter()
        .map(|s| (s.binding.as_str(), s.location.as_str()))
        .collect();
    assert_eq!(
        slo,
        [
            (
                "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                "https://id.example.com/sso/slo"
            ),
            (
                "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                "https://id.example.com/sso/slo"
            )
        ]
    );
    assert_eq!(
        acs.binding,
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    );
    let certs: Vec<String> = sso
        .key_descriptors
        .as_ref()
        .unwrap()
        .iter()
        .filter(|k| k.key_use.as_deref() == Some("signing"))
        .flat_map(|k| k.key_info.x509_data.as_ref().unwrap().certificates.clone())
        .collect();
    assert_eq!(
        certs,
        [
            keys.current.certificate_base64(),
            keys.previous.as_ref().unwrap().certificate_base64()
        ]
    );
    assert!(xml.contains("nameid-format:emailAddress"));
}

// ------------------------------------------------------------------------------------------
// IdP metadata as real IdPs export it
// ------------------------------------------------------------------------------------------

fn fixture(name: &str) -> String {
    std::fs::read_to_string(workspace().join("tests/fixtures/saml").join(name)).unwrap()
}

#[test]
fn okta_metadata_is_read() {
    let m = saml::parse_idp_metadata(&fixture("okta-idp-metadata.xml")).unwrap();
    assert_eq!(m.entity_id, "http://www.okta.com/exk1fcia6d6EMsf331d8");
    assert_eq!(
        m.sso_url,
        "https://acme.okta.com/app/acme_identity_1/exk1fcia6d6EMsf331d8/sso/saml"
    );
    assert_eq!(m.certificates.len(), 1);
    assert!(!m.want_authn_requests_signed);
    assert_eq!(
        m.slo_url, None,
        "Okta's metadata has no SingleLogoutService"
    );
}

#[test]
fn entra_id_metadata_is_read() {
    let m = saml::parse_idp_metadata(&fixture("entra-id-federationmetadata.xml")).unwrap();
    assert_eq!(
        m.entity_id,
        "https://sts.windows.net/4b1a6f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b/"
    );
    assert_eq!(
        m.sso_url,
        "https://login.microsoftonline.com/4b1a6f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b/saml2"
    );
    // The IDPSSODescriptor's two signing certificates (a rollover), not the WS-Fed ones twice.
    assert_eq!(m.certificates.len(), 2);
    assert_ne!(m.certificates[0], m.certificates[1]);
    assert!(!m.want_authn_requests_signed);
    assert_eq!(
        m.slo_url.as_deref(),
        Some("https://login.microsoftonline.com/4b1a6f0e-2c3d-4e5f-8a9b-0c1d2e3f4a5b/saml2")
    );
}

#[test]
fn google_workspace_metadata_is_read() {
    let m = saml::parse_idp_metadata(&fixture("google-workspace-idp-metadata.xml")).unwrap();
    assert_eq!(
        m.entity_id,
        "https://accounts.google.com/o/saml2?idpid=C01abcd23"
    );
    assert_eq!(
        m.sso_url,
        "https://accounts.google.com/o/saml2/idp?idpid=C01abcd23"
    );
    assert_eq!(m.certificates.len(), 1);
    // Wrapped base64 in the file, canonical (no whitespace) in the record.
    assert!(!m.certificates[0].contains(char::is_whitespace));
    assert!(!m.want_authn_requests_signed);
}

#[test]
fn keycloak_metadata_is_read() {
    let m = saml::parse_idp_metadata(&fixture("keycloak-idp-metadata.xml")).unwrap();
    assert_eq!(m.entity_id, "https://sso.acme.example/realms/acme");
    assert_eq!(
        m.sso_url,
        "https://sso.acme.example/realms/acme/protocol/saml"
    );
    // use="signing" and a key without `use`; the encryption key is left out.
    assert_eq!(m.certificates.len(), 2);
    assert!(m.want_authn_requests_signed);
    // The HTTP-Redirect SingleLogoutService, not the POST or Artifact one.
    assert_eq!(
        m.slo_url.as_deref(),
        Some("https://sso.acme.example/realms/acme/protocol/saml")
    );
}

#[test]
fn metadata_without_redirect_binding_or_signing_key_is_refused() {
    let okta = fixture("okta-idp-metadata.xml");
    let post_only = okta.replace(
        r#"Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect""#,
        r#"Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact""#,
    );
    assert!(saml::parse_idp_metadata(&post_only).is_err());
    let encryption_only = okta.replace(r#"use="signing""#, r#"use="encryption""#);
    assert!(saml::parse_idp_metadata(&encryption_only).is_err());
    assert!(saml::parse_idp_metadata("<!DOCTYPE x><x/>").is_err());
}
