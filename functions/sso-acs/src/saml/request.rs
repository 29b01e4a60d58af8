//! Messages we send with the HTTP-Redirect binding (SAML bindings §3.4): DEFLATE, base64,
//! URL-encoding, and a signature over the exact query string
//! `SAMLRequest=…&RelayState=…&SigAlg=…` (§3.4.4.1) with the SP's current key: for an
//! AuthnRequest when the IdP asks for it, for Single Logout's messages always.

use std::io::Write;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use identity_shared::idps::Idp;
use identity_shared::secrets::{SamlSpKeys, SpKey};

use super::Sp;
use super::xml::{escape, format_instant};

pub(crate) const SIG_ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// An AuthnRequest for the HTTP-Redirect binding: (request ID, full redirect URL with
/// SAMLRequest, RelayState and, when the IdP wants signed requests, SigAlg + Signature
/// made with the SP's current key).
pub fn authn_request_redirect(
    idp: &Idp,
    sp: &Sp,
    keys: &SamlSpKeys,
    relay_state: &str,
    now: i64,
) -> Result<(String, String), String> {
    let id = new_message_id();
    let xml = authn_request_xml(&id, idp, sp, now);
    let key = idp.want_authn_requests_signed.then_some(&keys.current);
    let url = redirect_url(&idp.sso_url, "SAMLRequest", &xml, relay_state, key)?;
    Ok((id, url))
}

/// A message for the HTTP-Redirect binding (SAML bindings §3.4.4): `param` (`SAMLRequest`
/// or `SAMLResponse`) is the XML, DEFLATEd and base64-encoded; with `key`, SigAlg and a
/// Signature over the exact query string `param=…&RelayState=…&SigAlg=…` are added.
pub(crate) fn redirect_url(
    endpoint: &str,
    param: &str,
    xml: &str,
    relay_state: &str,
    key: Option<&SpKey>,
) -> Result<String, String> {
    let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
    deflater
        .write_all(xml.as_bytes())
        .map_err(|e| format!("deflate: {e}"))?;
    let deflated = deflater.finish().map_err(|e| format!("deflate: {e}"))?;
    let message = base64::engine::general_purpose::STANDARD.encode(deflated);

    let mut params = vec![(param, message.as_str())];
    if !relay_state.is_empty() {
        params.push(("RelayState", relay_state));
    }
    if key.is_some() {
        params.push(("SigAlg", SIG_ALG_RSA_SHA256));
    }
    let mut query =
        serde_urlencoded::to_string(&params).map_err(|e| format!("query string: {e}"))?;
    if let Some(key) = key {
        let signature = sign_rsa_sha256(key, query.as_bytes())?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(signature);
        query.push('&');
        query.push_str(
            &serde_urlencoded::to_string([("Signature", encoded.as_str())])
                .map_err(|e| format!("query string: {e}"))?,
        );
    }
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    Ok(format!("{endpoint}{separator}{query}"))
}

/// A fresh message ID: `_` and 40 hex digits.
pub(crate) fn new_message_id() -> String {
    format!(
        "_{}",
        hex::encode(identity_shared::crypto::random_bytes(20))
    )
}

fn authn_request_xml(id: &str, idp: &Idp, sp: &Sp, now: i64) -> String {
    format!(
        concat!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{instant}" Destination="{destination}" "#,
            r#"AssertionConsumerServiceURL="{acs}" "#,
            r#"ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
            r#"<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" AllowCreate="true"/>"#,
            r#"</samlp:AuthnRequest>"#
        ),
        id = escape(id),
        instant = format_instant(now),
        destination = escape(&idp.sso_url),
        acs = escape(&sp.acs_url),
        issuer = escape(&sp.entity_id),
    )
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `data`, with the SP key (PKCS#8 or PKCS#1 PEM).
fn sign_rsa_sha256(key: &SpKey, data: &[u8]) -> Result<Vec<u8>, String> {
    let pem = pem::parse(key.private_key_pem.expose_secret())
        .map_err(|_| "the SAML SP key is not PEM".to_string())?;
    let pair = match pem.tag() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(pem.contents()),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(pem.contents()),
        _ => return Err("the SAML SP key is not an RSA private key".into()),
    }
    .map_err(|_| "the SAML SP key is not a usable RSA key".to_string())?;
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        data,
        &mut signature,
    )
    .map_err(|_| "signing the SAML message failed".to_string())?;
    Ok(signature)
}
