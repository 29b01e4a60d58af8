//! SAML Single Logout (SAML profiles §4.4), service-provider side.
//!
//! - Out: our `LogoutRequest` (when someone signs out of an SSO session) and our
//!   `LogoutResponse` (to an IdP's request) go over HTTP-Redirect, always signed over the
//!   query string with the SP's current key.
//! - In: the IdP's messages come over HTTP-Redirect (the query-string signature, §3.4.4.1)
//!   or HTTP-POST (an enveloped XML signature on the message, shape-checked as the ACS
//!   checks a Response). Either way the signature is checked against the IdP's registered
//!   certificates only, with the algorithms pinned, and every field is read from what the
//!   signature covers. Unsigned is refused; so is a message for another Destination, one
//!   whose IssueInstant is stale, and a request whose NotOnOrAfter passed. Replay (a
//!   request ID seen before) and InResponseTo (one of our requests, once) are the
//!   caller's, through the store.

use std::collections::HashMap;
use std::io::Read;

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use flate2::read::DeflateDecoder;
use identity_shared::idps::Idp;
use identity_shared::secrets::SamlSpKeys;
use identity_shared::session::SamlSubject;
use roxmltree::Node;

use super::request::{new_message_id, redirect_url};
use super::validate::fresh;
use super::verify;
use super::xml::{
    self, MAX_XML_BYTES, NS_ASSERTION, NS_PROTOCOL, children, escape, format_instant, instant, is,
    only_child, optional_child, text,
};
use super::{Refusal, Sp};

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// How long our LogoutRequest says it is good for.
const REQUEST_LIFETIME_SECS: i64 = 300;

/// Query-string signature algorithms accepted on the Redirect binding (no SHA-1).
fn redirect_algorithm(uri: &str) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match uri {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => {
            &signature::RSA_PKCS1_2048_8192_SHA512
        }
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => &signature::ECDSA_P256_SHA256_ASN1,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => &signature::ECDSA_P384_SHA384_ASN1,
        _ => return None,
    })
}

/// How a message reached us, and what its binding's signature covers.
#[derive(Debug, Clone)]
enum Binding {
    /// The exact octets signed (`SAML…=…&RelayState=…&SigAlg=…`, as received), the SigAlg
    /// and the signature; None when the query carries no signature.
    Redirect(Option<(String, String, Vec<u8>)>),
    Post,
}

/// A logout message as it arrived, before any trust.
#[derive(Debug, Clone)]
pub struct Incoming {
    xml: String,
    binding: Binding,
    /// The RelayState, to give back with our answer.
    pub relay_state: Option<String>,
}

impl Incoming {
    /// `GET /sso/slo?SAMLRequest|SAMLResponse=…[&RelayState=…][&SigAlg=…&Signature=…]`.
    pub fn from_query(raw_query: &str) -> Result<Incoming, Refusal> {
        if raw_query.len() > MAX_XML_BYTES {
            return Err(Refusal::Malformed);
        }
        // The raw (still URL-encoded) value of each parameter, as the signature covers it.
        let mut raw: HashMap<&str, &str> = HashMap::new();
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if raw.insert(k, v).is_some() {
                return Err(Refusal::Malformed);
            }
        }
        let decoded = |k: &str| -> Result<Option<String>, Refusal> {
            match raw.get(k) {
                None => Ok(None),
                Some(v) => serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={v}"))
                    .ok()
                    .and_then(|mut p| p.pop())
                    .map(|(_, v)| Some(v))
                    .ok_or(Refusal::Malformed),
            }
        };
        let param = match (
            raw.contains_key("SAMLRequest"),
            raw.contains_key("SAMLResponse"),
        ) {
            (true, false) => "SAMLRequest",
            (false, true) => "SAMLResponse",
            _ => return Err(Refusal::Malformed),
        };
        let message = decoded(param)?.ok_or(Refusal::Malformed)?;
        let xml = inflate(&message)?;
        let relay_state = decoded("RelayState")?;
        let signature = match (raw.get("SigAlg"), decoded("Signature")?) {
            (Some(sig_alg_raw), Some(sig)) => {
                let mut octets = format!("{param}={}", raw[param]);
                if let Some(r) = raw.get("RelayState") {
                    octets.push_str(&format!("&RelayState={r}"));
                }
                octets.push_str(&format!("&SigAlg={sig_alg_raw}"));
                let sig_alg = decoded("SigAlg")?.ok_or(Refusal::Malformed)?;
                let compact: String = sig.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| Refusal::Malformed)?;
                Some((octets, sig_alg, bytes))
            }
            (None, None) => None,
            _ => return Err(Refusal::Malformed),
        };
        Ok(Incoming {
            xml,
            binding: Binding::Redirect(signature),
            relay_state,
        })
    }

    /// `POST /sso/slo` with form fields `SAMLRequest|SAMLResponse`, `RelayState`.
    pub fn from_form(fields: &HashMap<String, String>) -> Result<Incoming, Refusal> {
        let encoded = match (fields.get("SAMLRequest"), fields.get("SAMLResponse")) {
            (Some(m), None) | (None, Some(m)) => m,
            _ => return Err(Refusal::Malformed),
        };
        Ok(Incoming {
            xml: xml::decode_post(encoded)?,
            binding: Binding::Post,
            relay_state: fields.get("RelayState").cloned(),
        })
    }

    /// The message guarded and parsed, once for the request: its Issuer finds the IdP
    /// ([`logout_issuer`]), then [`verify_logout`] reads the same document.
    pub fn receive(&self) -> Result<xml::Received<'_>, Refusal> {
        xml::receive(&self.xml)
    }
}

/// The Issuer, read without trust, only to find the IdP.
pub fn logout_issuer(received: &xml::Received<'_>) -> Result<String, Refusal> {
    let root = logout_root(&received.doc)?;
    let issuer = only_child(root, NS_ASSERTION, "Issuer").map(text)?;
    if issuer.is_empty() {
        return Err(Refusal::Malformed);
    }
    Ok(issuer)
}

/// A base64, DEFLATEd message (the Redirect binding), inflated to at most MAX_XML_BYTES.
fn inflate(message: &str) -> Result<String, Refusal> {
    let compact: String = message.chars().filter(|c| !c.is_whitespace()).collect();
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| Refusal::Malformed)?;
    let mut out = Vec::new();
    DeflateDecoder::new(deflated.as_slice())
        .take(MAX_XML_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| Refusal::Malformed)?;
    if out.len() > MAX_XML_BYTES {
        return Err(Refusal::Malformed);
    }
    let text = String::from_utf8(out).map_err(|_| Refusal::UnsupportedEncoding)?;
    xml::guard(&text)?;
    Ok(text)
}

fn logout_root<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Result<Node<'a, 'i>, Refusal> {
    let root = doc.root_element();
    if is(root, NS_PROTOCOL, "LogoutRequest") || is(root, NS_PROTOCOL, "LogoutResponse") {
        Ok(root)
    } else {
        Err(Refusal::Malformed)
    }
}

/// What a verified logout message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logout {
    /// The IdP asks us to end the sessions of `name_id` (those of `session_indexes`, or
    /// all when empty). `id` is the replay key, good until `valid_until`.
    Request {
        id: String,
        name_id: String,
        session_indexes: Vec<String>,
        valid_until: i64,
    },
    /// The IdP's answer to our LogoutRequest `in_response_to`.
    Response {
        in_response_to: String,
        success: bool,
    },
}

/// The whole decision for one logout message from one IdP, given `now` (no I/O).
pub fn verify_logout(
    incoming: &Incoming,
    received: &xml::Received<'_>,
    idp: &Idp,
    sp: &Sp,
    now: i64,
) -> Result<Logout, Refusal> {
    if idp.certificates.is_empty() {
        return Err(Refusal::UntrustedSignature);
    }
    let raw = &received.doc;
    let root = logout_root(raw)?;
    match &incoming.binding {
        Binding::Redirect(None) => Err(Refusal::NotSigned),
        Binding::Redirect(Some((octets, sig_alg, sig))) => {
            let algorithm = redirect_algorithm(sig_alg).ok_or(Refusal::WeakAlgorithm)?;
            if !signed_by_idp(algorithm, octets.as_bytes(), sig, &idp.certificates) {
                return Err(Refusal::UntrustedSignature);
            }
            // The query signature covers the whole message: it is read as it came.
            read(root, idp, sp, now)
        }
        Binding::Post => {
            let signed = verify::check_shape(raw, root)?;
            let assertions = raw.descendants().any(|n| {
                is(n, NS_ASSERTION, "Assertion") || is(n, NS_ASSERTION, "EncryptedAssertion")
            });
            if !signed.response || signed.assertion || assertions {
                return Err(Refusal::SignatureWrapping);
            }
            // Only what the signature covers is read.
            let trusted = verify::verified_texts(received.xml, &idp.certificates)?;
            let doc = verify::verified_document(&trusted)?;
            let message = doc.root_element();
            if message.tag_name() != root.tag_name()
                || message.attribute("ID") != root.attribute("ID")
            {
                return Err(Refusal::SignatureWrapping);
            }
            read(message, idp, sp, now)
        }
    }
}

/// Does one registered certificate's key verify `sig` over `octets`?
fn signed_by_idp(
    algorithm: &'static dyn VerificationAlgorithm,
    octets: &[u8],
    sig: &[u8],
    certificates: &[String],
) -> bool {
    verify::registered(certificates).any(|der| {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
            return false;
        };
        let key = &cert.public_key().subject_public_key.data;
        UnparsedPublicKey::new(algorithm, key.as_ref())
            .verify(octets, sig)
            .is_ok()
    })
}

/// The rules, on the verified message only.
fn read(message: Node, idp: &Idp, sp: &Sp, now: i64) -> Result<Logout, Refusal> {
    if message.attribute("Version") != Some("2.0") {
        return Err(Refusal::Malformed);
    }
    let id = message
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or(Refusal::Malformed)?;
    let issuer = only_child(message, NS_ASSERTION, "Issuer").map_err(|_| Refusal::WrongIssuer)?;
    if text(issuer) != idp.entity_id {
        return Err(Refusal::WrongIssuer);
    }
    // A signed message names where it is going (bindings §3.4.5.2, §3.5.5.2): ours only.
    if message.attribute("Destination") != Some(sp.slo_url.as_str()) {
        return Err(Refusal::WrongDestination);
    }
    let issued = instant(
        message
            .attribute("IssueInstant")
            .ok_or(Refusal::Malformed)?,
    )?;
    fresh(issued, now)?;
    let age_bound = issued + super::MAX_ASSERTION_AGE_SECS + super::MAX_SKEW_SECS;

    if is(message, NS_PROTOCOL, "LogoutResponse") {
        let in_response_to = message
            .attribute("InResponseTo")
            .filter(|r| !r.is_empty())
            .ok_or(Refusal::UnknownRequest)?;
        let status = only_child(message, NS_PROTOCOL, "Status")?;
        let code = only_child(status, NS_PROTOCOL, "StatusCode")?;
        return Ok(Logout::Response {
            in_response_to: in_response_to.to_string(),
            success: code.attribute("Value") == Some(STATUS_SUCCESS),
        });
    }

    let valid_until = match message.attribute("NotOnOrAfter") {
        Some(na) => {
            let na = instant(na)?;
            if now >= na + super::MAX_SKEW_SECS {
                return Err(Refusal::Expired);
            }
            na.min(age_bound)
        }
        None => age_bound,
    };
    // The person, by plain NameID only (an EncryptedID or BaseID names nobody we know).
    let name_id = optional_child(message, NS_ASSERTION, "NameID")?
        .map(text)
        .filter(|n| !n.is_empty())
        .ok_or(Refusal::Malformed)?;
    let session_indexes = children(message, NS_PROTOCOL, "SessionIndex")
        .map(text)
        .collect();
    Ok(Logout::Request {
        id: id.to_string(),
        name_id,
        session_indexes,
        valid_until,
    })
}

/// Our LogoutRequest for the session a login named `subject`, over HTTP-Redirect to the
/// IdP's `slo_url`, signed: (its ID, the URL).
pub fn logout_request_redirect(
    slo_url: &str,
    sp: &Sp,
    keys: &SamlSpKeys,
    subject: &SamlSubject,
    now: i64,
) -> Result<(String, String), String> {
    let id = new_message_id();
    let attribute = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| format!(r#" {name}="{}""#, escape(v)))
            .unwrap_or_default()
    };
    let session_index = subject
        .session_index
        .as_deref()
        .map(|s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(s)))
        .unwrap_or_default();
    let xml = format!(
        concat!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{instant}" NotOnOrAfter="{until}" Destination="{destination}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
            r#"<saml:NameID{format}{nq}{spnq}>{name_id}</saml:NameID>"#,
            "{session_index}",
            r#"</samlp:LogoutRequest>"#
        ),
        id = id,
        instant = format_instant(now),
        until = format_instant(now + REQUEST_LIFETIME_SECS),
        destination = escape(slo_url),
        issuer = escape(&sp.entity_id),
        format = attribute("Format", &subject.format),
        nq = attribute("NameQualifier", &subject.name_qualifier),
        spnq = attribute("SPNameQualifier", &subject.sp_name_qualifier),
        name_id = escape(&subject.name_id),
        session_index = session_index,
    );
    let url = redirect_url(slo_url, "SAMLRequest", &xml, "", Some(&keys.current))?;
    Ok((id, url))
}

/// Our LogoutResponse (Success) to the IdP's LogoutRequest `in_response_to`, over
/// HTTP-Redirect to its `slo_url`, signed, with its RelayState given back.
pub fn logout_response_redirect(
    slo_url: &str,
    sp: &Sp,
    keys: &SamlSpKeys,
    in_response_to: &str,
    relay_state: Option<&str>,
    now: i64,
) -> Result<String, String> {
    let xml = format!(
        concat!(
            r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{instant}" Destination="{destination}" InResponseTo="{irt}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
            r#"<samlp:Status><samlp:StatusCode Value="{success}"/></samlp:Status>"#,
            r#"</samlp:LogoutResponse>"#
        ),
        id = new_message_id(),
        instant = format_instant(now),
        destination = escape(slo_url),
        irt = escape(in_response_to),
        issuer = escape(&sp.entity_id),
        success = STATUS_SUCCESS,
    );
    redirect_url(
        slo_url,
        "SAMLResponse",
        &xml,
        relay_state.unwrap_or(""),
        Some(&keys.current),
    )
}
