//! SAML test fixtures: an IdP that signs with libxmlsec1 (sso-acs's `idp-signer`), the IdP
//! record and SP it is validated against, the XML signature wrapping manipulations of
//! "On Breaking SAML" (Somorovsky et al., 2012; as SAML Raider builds them), and the
//! independent signer (python signxml).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use identity_shared::idps::Idp;
use samael::crypto::{CertificateDer, CryptoProvider, ReduceMode, XmlSec};
use sso_acs::saml::idp_signer::{IdpSigner, ResponseSpec, Sign};
use sso_acs::saml::{self, Refusal, Sp, Verified};

/// 2026-01-01T00:00:00Z: the instant responses are issued at.
pub const NOW: i64 = 1_767_225_600;
pub const ENTITY_ID: &str = "http://www.okta.com/exk1acme";
pub const REQUEST_ID: &str = "_3f1c2a9e6b7d4e8f9a0b1c2d3e4f5a6b7c8d9e0f";
pub const LIFETIME: i64 = 300;
/// The person the IdP really signed in (the attacker in the wrapping tests).
pub const ATTACKER: &str = "mallory@acme.example";
/// Whom the wrapped, unsigned content claims to be.
pub const VICTIM: &str = "ceo@acme.example";

/// One IdP (key, certificate, record) and our SP.
pub struct SamlCase {
    pub signer: IdpSigner,
    pub idp: Idp,
    pub sp: Sp,
}

impl SamlCase {
    pub fn new() -> Self {
        let signer = IdpSigner::generate("acme.okta.example").expect("IdP key");
        let idp = Idp {
            id: "acme".into(),
            entity_id: ENTITY_ID.into(),
            sso_url: "https://acme.okta.example/app/identity/exk1acme/sso/saml".into(),
            certificates: vec![signer.certificate_base64()],
            domains: vec!["acme.example".into()],
            team: Some("acme".into()),
            enterprise: None,
            allow_idp_initiated: false,
            require_mfa: false,
            mfa_contexts: vec![],
            want_authn_requests_signed: false,
            slo_url: None,
            any_domain: false,
            development: false,
            generation: String::new(),
            created_at: NOW - 86_400,
            version: 1,
        };
        Self {
            signer,
            idp,
            sp: Sp::from_base_url("https://id.example.com"),
        }
    }

    /// A correct SP-initiated response for `email`, signed as `sign` says.
    pub fn spec(&self, email: &str, sign: Sign) -> ResponseSpec {
        ResponseSpec {
            issuer: self.idp.entity_id.clone(),
            destination: self.sp.acs_url.clone(),
            audience: self.sp.entity_id.clone(),
            recipient: self.sp.acs_url.clone(),
            email: email.into(),
            in_response_to: Some(REQUEST_ID.into()),
            authn_context: None,
            now: NOW,
            lifetime_secs: LIFETIME,
            sign,
        }
    }

    pub fn signed(&self, spec: &ResponseSpec) -> String {
        self.signer.response(spec).expect("sign the response")
    }

    /// As the route runs it: base64 as posted, `decode_post`, then `validate` at `now`
    /// for the stored request `expected`.
    pub fn post(&self, xml: &str, expected: Option<&str>, now: i64) -> Result<Verified, Refusal> {
        let posted = base64::engine::general_purpose::STANDARD.encode(xml);
        let decoded = saml::decode_post(&posted)?;
        saml::validate(&decoded, &self.idp, &self.sp, expected, now)
    }

    /// SP-initiated, a few seconds after issue.
    pub fn accept(&self, xml: &str) -> Result<Verified, Refusal> {
        self.post(xml, Some(REQUEST_ID), NOW + 5)
    }

    /// Whether libxmlsec1 (through samael, no algorithm pin, no shape rule) finds every
    /// signature in `xml` valid for this IdP's certificate: shows a manipulated message
    /// still carries a genuine signature.
    pub fn xmlsec_accepts_signatures(&self, xml: &str) -> bool {
        let der = base64::engine::general_purpose::STANDARD
            .decode(self.signer.certificate_base64())
            .unwrap();
        XmlSec::reduce_xml_to_signed(xml, &[CertificateDer::from(der)], ReduceMode::PreDigest)
            .is_ok()
    }
}

impl Default for SamlCase {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------------------
// String surgery on the signer's output (its layout is known: `saml2p:`, `saml2:`, `ds:`).
// ---------------------------------------------------------------------------------------

/// Byte range of the first element that starts with `open` and ends with `close` (not
/// nested in itself).
pub fn span(xml: &str, open: &str, close: &str) -> std::ops::Range<usize> {
    let start = xml.find(open).unwrap_or_else(|| panic!("no {open}"));
    let end = xml[start..]
        .find(close)
        .unwrap_or_else(|| panic!("no {close}"))
        + start
        + close.len();
    start..end
}

const ASSERTION_OPEN: &str = "<saml2:Assertion ";
const ASSERTION_CLOSE: &str = "</saml2:Assertion>";
const RESPONSE_OPEN: &str = "<saml2p:Response ";
const RESPONSE_CLOSE: &str = "</saml2p:Response>";
const SIGNATURE_OPEN: &str = "<ds:Signature";
const SIGNATURE_CLOSE: &str = "</ds:Signature>";

/// The element without its first ds:Signature.
pub fn without_signature(element: &str) -> String {
    let s = span(element, SIGNATURE_OPEN, SIGNATURE_CLOSE);
    format!("{}{}", &element[..s.start], &element[s.end..])
}

/// The element with its (first) ID attribute changed.
pub fn with_id(element: &str, id: &str) -> String {
    let at = element.find(" ID=\"").expect("an ID") + 5;
    let end = element[at..].find('"').unwrap() + at;
    format!("{}{id}{}", &element[..at], &element[end..])
}

/// The attacker's change: every mention of the signed-in person becomes the victim.
pub fn evil(element: &str) -> String {
    element.replace(ATTACKER, VICTIM)
}

/// `content` inserted before the first `marker` of `xml`.
pub fn insert_before(xml: &str, marker: &str, content: &str) -> String {
    let at = xml.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    format!("{}{content}{}", &xml[..at], &xml[at..])
}

fn replace_range(xml: &str, range: std::ops::Range<usize>, with: &str) -> String {
    format!("{}{with}{}", &xml[..range.start], &xml[range.end..])
}

/// The evil Response of XSW1/2: the original altered, with new IDs for the Response and
/// its Assertion (so no ID is duplicated and the signature still verifies).
fn evil_response(original: &str) -> String {
    let a = span(original, ASSERTION_OPEN, ASSERTION_CLOSE);
    let assertion = with_id(&original[a.clone()], "_evil_assertion_ID");
    with_id(
        &evil(&replace_range(original, a, &assertion)),
        "_evil_response_ID",
    )
}

/// XSW1 (Response signed): the evil Response keeps the Signature, which now carries the
/// original Response (its signature removed) as a child.
pub fn xsw1(xml: &str) -> String {
    let r = span(xml, RESPONSE_OPEN, RESPONSE_CLOSE);
    let original = &xml[r.clone()];
    let evil_response = evil_response(original);
    let wrapped = insert_before(
        &evil_response,
        SIGNATURE_CLOSE,
        &without_signature(original),
    );
    replace_range(xml, r, &wrapped)
}

/// XSW2 (Response signed): as XSW1, the original Response placed before the Signature as
/// a sibling (a detached signature).
pub fn xsw2(xml: &str) -> String {
    let r = span(xml, RESPONSE_OPEN, RESPONSE_CLOSE);
    let original = &xml[r.clone()];
    let evil_response = evil_response(original);
    let wrapped = insert_before(&evil_response, SIGNATURE_OPEN, &without_signature(original));
    replace_range(xml, r, &wrapped)
}

/// XSW3 (Assertion signed): an evil Assertion (new ID, no signature) inserted before the
/// signed one.
pub fn xsw3(xml: &str) -> String {
    let a = span(xml, ASSERTION_OPEN, ASSERTION_CLOSE);
    let original = &xml[a.clone()];
    let evil_assertion = with_id(&without_signature(&evil(original)), "_evil_assertion_ID");
    insert_before(xml, ASSERTION_OPEN, &evil_assertion)
}

/// XSW4 (Assertion signed): the evil Assertion appended to the Response, with the signed
/// one moved inside it.
pub fn xsw4(xml: &str) -> String {
    let a = span(xml, ASSERTION_OPEN, ASSERTION_CLOSE);
    let original = xml[a.clone()].to_string();
    let evil_assertion = with_id(&without_signature(&evil(&original)), "_evil_assertion_ID");
    let close = evil_assertion.rfind(ASSERTION_CLOSE).unwrap();
    let nested = format!("{}{original}{ASSERTION_CLOSE}", &evil_assertion[..close]);
    let removed = replace_range(xml, a, "");
    insert_before(&removed, RESPONSE_CLOSE, &nested)
}

/// XSW5 (Assertion signed): the signed Assertion altered in place (new ID, signature kept);
/// an unsigned copy of the original appended to the Response for the reference to find.
pub fn xsw5(xml: &str) -> String {
    let a = span(xml, ASSERTION_OPEN, ASSERTION_CLOSE);
    let original = xml[a.clone()].to_string();
    let evil_assertion = with_id(&evil(&original), "_evil_assertion_ID");
    let altered = replace_range(xml, a, &evil_assertion);
    insert_before(&altered, RESPONSE_CLOSE, &without_signature(&original))
}

/// XSW6 (Assertion signed): as XSW5, the unsigned copy placed inside the Signature.
pub fn xsw6(xml: &str) -> String {
    let a = span(xml, ASSERTION_OPEN, ASSERTION_CLOSE);
    let original = xml[a.clone()].to_string();
    let evil_assertion = with_id(&evil(&original), "_evil_assertion_ID");
    let wrapped = insert_before(
        &evil_assertion,
        SIGNATURE_CLOSE,
        &without_signature(&original),
    );
    replace_range(xml, a, &wrapped)
}

/// XSW7 (Assertion signed): an `Extensions` element (schema `xs:any`) before the signed
/// Assertion, holding an evil copy with the same ID and no signature.
pub fn xsw7(xml: &str) -> String {
    let a = span(xml, ASSERTION_OPEN, ASSERTION_CLOSE);
    let evil_copy = without_signature(&evil(&xml[a]));
    insert_before(
        xml,
        ASSERTION_OPEN,
        &format!("<Extensions>{evil_copy}</Extensions>"),
    )
}

/// XSW8 (Assertion signed): the signed Assertion altered in place (same ID, signature
/// kept); an `Object` in the Signature holds the unsigned original.
pub fn xsw8(xml: &str) -> String {
    let a = span(xml, ASSERTION_OPEN, ASSERTION_CLOSE);
    let original = xml[a.clone()].to_string();
    let object = format!("<Object>{}</Object>", without_signature(&original));
    let wrapped = insert_before(&evil(&original), SIGNATURE_CLOSE, &object);
    replace_range(xml, a, &wrapped)
}

/// A second Assertion (new ID, another person) after the first, in an unsigned response.
pub fn with_second_assertion(unsigned: &str, email: &str) -> String {
    let a = span(unsigned, ASSERTION_OPEN, ASSERTION_CLOSE);
    let second = with_id(&unsigned[a.clone()], "_second_assertion").replace(ATTACKER, email);
    insert_before(unsigned, RESPONSE_CLOSE, &second)
}

// ---------------------------------------------------------------------------------------
// The independent implementation: python signxml (lxml + cryptography).
// ---------------------------------------------------------------------------------------

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A python with signxml: `IDENTITY_TEST_PYTHON`, else the test command's venv. A missing one
/// is a failure, unless `IDENTITY_TEST_SKIP_SERVICES=1` (then None: the caller says it
/// skipped).
pub fn python_with_signxml() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("IDENTITY_TEST_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push(workspace().join(".test-deps/venv/bin/python"));
    let found = candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import signxml"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        if crate::services_required() {
            panic!("python with signxml is missing: tests/run.sh installs it");
        }
        eprintln!("skipped: python with signxml not found; run ./tests/run.sh");
    }
    found
}

/// Signs the element with ID `id` of `xml` with signxml (enveloped, exclusive c14n,
/// RSA-SHA256, SHA-256), the signature placed where `<ds:Signature Id="placeholder"/>`
/// stands.
pub fn signxml_sign(python: &Path, signer: &IdpSigner, xml: &str, id: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert, input) = (
        dir.path().join("idp.key"),
        dir.path().join("idp.crt"),
        dir.path().join("unsigned.xml"),
    );
    std::fs::write(&key, signer.key_pem()).unwrap();
    std::fs::write(&cert, signer.cert_pem()).unwrap();
    std::fs::write(&input, xml).unwrap();
    let out = Command::new(python)
        .arg(workspace().join("tests/signxml_sign.py"))
        .args([&key, &cert, &input])
        .arg(id)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "signxml failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
