//! A SAML IdP that signs Responses with a real XML-DSig implementation (libxmlsec1 through
//! samael): the local development IdP of `identity serve` and the test suite's IdP. Never
//! routed in a Lambda.
//!
//! Signatures are enveloped, exclusive c14n, RSA-SHA256 over a SHA-256 digest, with the
//! certificate in KeyInfo, placed after the signed element's Issuer as IdPs place them.

use base64::Engine;
use samael::crypto::{CryptoProvider, XmlSec};

use super::xml::{escape, format_instant};

/// Which elements carry an enveloped signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Response,
    Assertion,
    Both,
}

/// One Response with one Assertion, as an IdP would send it.
#[derive(Debug, Clone)]
pub struct ResponseSpec {
    pub issuer: String,
    pub destination: String,
    pub audience: String,
    pub recipient: String,
    /// NameID, format emailAddress.
    pub email: String,
    pub in_response_to: Option<String>,
    pub authn_context: Option<String>,
    pub now: i64,
    /// NotOnOrAfter = now + lifetime_secs; NotBefore = now.
    pub lifetime_secs: i64,
    pub sign: Sign,
}

/// The signature and digest algorithms of a signature the signer makes. Only RSA-SHA256
/// is accepted by the SP; SHA-1 exists to test that it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    RsaSha256,
    RsaSha1,
}

impl SigAlg {
    fn uris(self) -> (&'static str, &'static str) {
        match self {
            SigAlg::RsaSha256 => (
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "http://www.w3.org/2001/04/xmlenc#sha256",
            ),
            SigAlg::RsaSha1 => (
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                "http://www.w3.org/2000/09/xmldsig#sha1",
            ),
        }
    }
}

/// The IDs of a Response and its Assertion: `_r…` and `_a…`, random.
#[derive(Debug, Clone)]
pub struct Ids {
    pub response: String,
    pub assertion: String,
}

/// RSA-2048 key + self-signed certificate.
pub struct IdpSigner {
    key_pem: String,
    /// PKCS#8 DER of the key, as xmlsec loads it.
    key_der: Vec<u8>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for IdpSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpSigner").finish_non_exhaustive()
    }
}

const SAML_ISSUER_CLOSE: &str = "</saml2:Issuer>";

/// The attributes an IdP typically sends with a person, as `saml2:Attribute` elements:
/// the email, names guessed from its local part, a department, an employee number and
/// groups.
fn attribute_statement(email: &str, employee: &str) -> String {
    let local = email.split('@').next().unwrap_or("");
    let mut names = local
        .split(['.', '_', '-'])
        .filter(|p| !p.is_empty())
        .map(capitalise);
    let first = names.next().unwrap_or_else(|| "Test".into());
    let last = names.next().unwrap_or_else(|| "User".into());
    let groups = ["Everyone", "Engineering", "identity-users"].map(str::to_string);
    let attributes = [
        ("email", vec![email.to_string()]),
        ("firstName", vec![first.clone()]),
        ("lastName", vec![last.clone()]),
        ("displayName", vec![format!("{first} {last}")]),
        ("department", vec!["Engineering".to_string()]),
        ("employeeNumber", vec![format!("E{employee}")]),
        ("groups", groups.to_vec()),
    ];
    let mut xml = String::new();
    for (name, values) in attributes {
        xml.push_str(&format!(
            r#"<saml2:Attribute Name="{name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">"#
        ));
        for v in values {
            xml.push_str(&format!(
                r#"<saml2:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">{}</saml2:AttributeValue>"#,
                escape(&v)
            ));
        }
        xml.push_str("</saml2:Attribute>");
    }
    xml
}

impl IdpSigner {
    pub fn generate(common_name: &str) -> Result<Self, String> {
        let failed = |e: rcgen::Error| format!("IdP key generation failed: {e}");
        let key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .map_err(failed)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
        let cert = params.self_signed(&key).map_err(failed)?;
        Self::from_pem(&key.serialize_pem(), &cert.pem())
    }

    /// A key (PKCS#8 `PRIVATE KEY`) and its certificate, both PEM.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, String> {
        let key = pem::parse(key_pem).map_err(|_| "the IdP key is not PEM".to_string())?;
        if key.tag() != "PRIVATE KEY" {
            return Err("the IdP key must be a PKCS#8 'PRIVATE KEY'".into());
        }
        let cert =
            pem::parse(cert_pem).map_err(|_| "the IdP certificate is not PEM".to_string())?;
        if cert.tag() != "CERTIFICATE" {
            return Err("the IdP certificate is not a CERTIFICATE".into());
        }
        x509_parser::parse_x509_certificate(cert.contents())
            .map_err(|_| "the IdP certificate is not X.509".to_string())?;
        Ok(Self {
            key_pem: key_pem.to_string(),
            key_der: key.contents().to_vec(),
            cert_pem: cert_pem.to_string(),
            cert_der: cert.contents().to_vec(),
        })
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Base64 DER, as `Idp::certificates` holds it.
    pub fn certificate_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.cert_der)
    }

    /// The signed Response XML (not yet base64).
    pub fn response(&self, spec: &ResponseSpec) -> Result<String, String> {
        let (xml, ids) = self.unsigned_response(spec);
        match spec.sign {
            Sign::Response => self.sign_element(&xml, &ids.response, SigAlg::RsaSha256),
            Sign::Assertion => self.sign_element(&xml, &ids.assertion, SigAlg::RsaSha256),
            Sign::Both => {
                let signed = self.sign_element(&xml, &ids.assertion, SigAlg::RsaSha256)?;
                self.sign_element(&signed, &ids.response, SigAlg::RsaSha256)
            }
        }
    }

    /// The Response of `spec` without any signature, and its IDs (fresh random ones).
    pub fn unsigned_response(&self, spec: &ResponseSpec) -> (String, Ids) {
        let random = || hex::encode(identity_shared::crypto::random_bytes(16));
        let ids = Ids {
            response: format!("_r{}", random()),
            assertion: format!("_a{}", random()),
        };
        let now = format_instant(spec.now);
        let until = format_instant(spec.now + spec.lifetime_secs);
        let in_response_to = spec
            .in_response_to
            .as_deref()
            .map(|r| format!(r#" InResponseTo="{}""#, escape(r)))
            .unwrap_or_default();
        let context = spec
            .authn_context
            .as_deref()
            .unwrap_or("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport");
        let session = &ids.assertion[2..18];
        let attribute_xml = attribute_statement(&spec.email, &ids.assertion[2..8]);
        let xml = format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                "\n",
                r#"<saml2p:Response xmlns:saml2p="urn:oasis:names:tc:SAML:2.0:protocol" Destination="{destination}" ID="{rid}"{irt} IssueInstant="{now}" Version="2.0">"#,
                r#"<saml2:Issuer xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{issuer}</saml2:Issuer>"#,
                r#"<saml2p:Status><saml2p:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></saml2p:Status>"#,
                r#"<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="{aid}" IssueInstant="{now}" Version="2.0">"#,
                r#"<saml2:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{issuer}</saml2:Issuer>"#,
                r#"<saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{email}</saml2:NameID>"#,
                r#"<saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
                r#"<saml2:SubjectConfirmationData{irt} NotOnOrAfter="{until}" Recipient="{recipient}"/>"#,
                r#"</saml2:SubjectConfirmation></saml2:Subject>"#,
                r#"<saml2:Conditions NotBefore="{now}" NotOnOrAfter="{until}">"#,
                r#"<saml2:AudienceRestriction><saml2:Audience>{audience}</saml2:Audience></saml2:AudienceRestriction>"#,
                r#"</saml2:Conditions>"#,
                r#"<saml2:AuthnStatement AuthnInstant="{now}" SessionIndex="_s{session}">"#,
                r#"<saml2:AuthnContext><saml2:AuthnContextClassRef>{context}</saml2:AuthnContextClassRef></saml2:AuthnContext>"#,
                r#"</saml2:AuthnStatement>"#,
                r#"<saml2:AttributeStatement>{attributes}</saml2:AttributeStatement>"#,
                r#"</saml2:Assertion></saml2p:Response>"#
            ),
            destination = escape(&spec.destination),
            rid = ids.response,
            irt = in_response_to,
            now = now,
            until = until,
            issuer = escape(&spec.issuer),
            aid = ids.assertion,
            email = escape(&spec.email),
            recipient = escape(&spec.recipient),
            audience = escape(&spec.audience),
            session = session,
            context = escape(context),
            attributes = attribute_xml,
        );
        (xml, ids)
    }

    /// Adds an enveloped signature to the element whose `ID` is `id` (a Response or an
    /// Assertion as [`IdpSigner::unsigned_response`] writes them), right after its Issuer,
    /// and signs it with libxmlsec1. The new signature must come before any other in
    /// document order (sign an Assertion before its Response).
    pub fn sign_element(&self, xml: &str, id: &str, alg: SigAlg) -> Result<String, String> {
        let at = xml
            .find(&format!(r#"ID="{id}""#))
            .ok_or_else(|| format!("no element with ID {id}"))?;
        let insert = xml[at..]
            .find(SAML_ISSUER_CLOSE)
            .map(|i| at + i + SAML_ISSUER_CLOSE.len())
            .ok_or_else(|| format!("no Issuer in the element with ID {id}"))?;
        if xml[..insert].contains("<ds:Signature") {
            return Err("a signature precedes this one: sign the inner element first".into());
        }
        let (signature_method, digest_method) = alg.uris();
        let template = format!(
            concat!(
                r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
                r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
                r#"<ds:SignatureMethod Algorithm="{sm}"/>"#,
                r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
                r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
                r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">"#,
                r#"<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="xs"/>"#,
                r#"</ds:Transform></ds:Transforms>"#,
                r#"<ds:DigestMethod Algorithm="{dm}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>"#,
                r#"<ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate>"#,
                r#"</ds:X509Data></ds:KeyInfo></ds:Signature>"#
            ),
            sm = signature_method,
            dm = digest_method,
            id = escape(id),
            cert = self.certificate_base64(),
        );
        let with_template = format!("{}{template}{}", &xml[..insert], &xml[insert..]);
        super::verify::init_xml_libraries();
        XmlSec::sign_xml(with_template.as_bytes(), &self.key_der)
            .map_err(|e| format!("xmlsec signing failed: {e}"))
    }
}

/// A Single Logout message as an IdP sends it.
#[derive(Debug, Clone)]
pub enum LogoutKind {
    /// End the sessions of `name_id` (of `session_index` when given).
    Request {
        name_id: String,
        session_index: Option<String>,
    },
    /// The answer to the SP's LogoutRequest `in_response_to`.
    Response {
        in_response_to: String,
        success: bool,
    },
}

#[derive(Debug, Clone)]
pub struct LogoutSpec {
    pub issuer: String,
    pub destination: String,
    pub now: i64,
    pub kind: LogoutKind,
}

impl IdpSigner {
    /// The message of `spec`, unsigned, and its ID (fresh, random).
    pub fn unsigned_logout(&self, spec: &LogoutSpec) -> (String, String) {
        let id = format!(
            "_l{}",
            hex::encode(identity_shared::crypto::random_bytes(16))
        );
        let head = |root: &str, extra: &str| {
            format!(
                concat!(
                    r#"<saml2p:{root} xmlns:saml2p="urn:oasis:names:tc:SAML:2.0:protocol" "#,
                    r#"xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
                    r#"IssueInstant="{now}" Destination="{destination}"{extra}>"#,
                    r#"<saml2:Issuer>{issuer}</saml2:Issuer>"#
                ),
                root = root,
                id = id,
                now = format_instant(spec.now),
                destination = escape(&spec.destination),
                extra = extra,
                issuer = escape(&spec.issuer),
            )
        };
        let xml = match &spec.kind {
            LogoutKind::Request {
                name_id,
                session_index,
            } => format!(
                concat!(
                    "{head}",
                    r#"<saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml2:NameID>"#,
                    "{index}</saml2p:LogoutRequest>"
                ),
                head = head(
                    "LogoutRequest",
                    &format!(r#" NotOnOrAfter="{}""#, format_instant(spec.now + 300))
                ),
                name_id = escape(name_id),
                index = session_index
                    .as_deref()
                    .map(|i| format!("<saml2p:SessionIndex>{}</saml2p:SessionIndex>", escape(i)))
                    .unwrap_or_default(),
            ),
            LogoutKind::Response {
                in_response_to,
                success,
            } => format!(
                concat!(
                    "{head}",
                    r#"<saml2p:Status><saml2p:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:{status}"/></saml2p:Status>"#,
                    "</saml2p:LogoutResponse>"
                ),
                head = head(
                    "LogoutResponse",
                    &format!(r#" InResponseTo="{}""#, escape(in_response_to))
                ),
                status = if *success { "Success" } else { "Responder" },
            ),
        };
        (xml, id)
    }

    /// The message of `spec` with an enveloped XML signature (the HTTP-POST binding): the
    /// form field's value, base64.
    pub fn logout_post(&self, spec: &LogoutSpec) -> Result<String, String> {
        let (xml, id) = self.unsigned_logout(spec);
        let signed = self.sign_element(&xml, &id, SigAlg::RsaSha256)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(signed))
    }

    /// `xml` for the HTTP-Redirect binding: the query string (`SAMLRequest` or
    /// `SAMLResponse` by the root element, RelayState, and, when `sign`, SigAlg and the
    /// RSA-SHA256 Signature over them, as bindings §3.4.4.1 says).
    pub fn redirect_query(
        &self,
        xml: &str,
        relay_state: Option<&str>,
        sign: bool,
    ) -> Result<String, String> {
        use std::io::Write;
        let param = if xml.contains("<saml2p:LogoutResponse") {
            "SAMLResponse"
        } else {
            "SAMLRequest"
        };
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflater
            .write_all(xml.as_bytes())
            .map_err(|e| e.to_string())?;
        let deflated = deflater.finish().map_err(|e| e.to_string())?;
        let message = base64::engine::general_purpose::STANDARD.encode(deflated);
        let mut params = vec![(param, message.as_str())];
        if let Some(r) = relay_state {
            params.push(("RelayState", r));
        }
        if sign {
            params.push(("SigAlg", super::request::SIG_ALG_RSA_SHA256));
        }
        let mut query = serde_urlencoded::to_string(&params).map_err(|e| e.to_string())?;
        if sign {
            let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&self.key_der)
                .map_err(|_| "the IdP key is not an RSA key".to_string())?;
            let mut signature = vec![0u8; pair.public_modulus_len()];
            pair.sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                query.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing failed".to_string())?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(signature);
            query.push('&');
            query.push_str(
                &serde_urlencoded::to_string([("Signature", encoded.as_str())])
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(query)
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
