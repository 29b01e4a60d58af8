//! The XML-DSig self-test every process that verifies SAML runs before serving: the sso-acs
//! Lambda during its init phase, `identity serve` at start-up.

use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
};

/// A SAML assertion signed (RSA-SHA256, exclusive c14n, enveloped) by a throw-away key whose
/// private half no longer exists, and that key's certificate (DER).
const SELF_TEST_ASSERTION: &str = include_str!("../../selftest/signed-assertion.xml");
const SELF_TEST_SIGNER: &[u8] = include_bytes!("../../selftest/signer.der");
const SELF_TEST_EMAIL: &str = "self-test@example.invalid";

/// Known-answer test of signature verification, as the ACS uses it (`verify::verified_bytes`):
/// the signed assertion verifies and yields its content; the same assertion with its NameID
/// changed does not. Initialises libxml2, libxmlsec1 and OpenSSL first (as every request's
/// verification does). Any other outcome means the XML-DSig stack cannot be trusted: the
/// Lambda does not start, and neither does `identity serve`.
pub fn self_test() -> Result<(), String> {
    use base64::Engine;
    let signer = [base64::engine::general_purpose::STANDARD.encode(SELF_TEST_SIGNER)];
    let verify = |xml: &str| super::verify::verified_texts(xml, &signer).map(|t| t.concat());
    let verified = verify(SELF_TEST_ASSERTION)
        .map_err(|e| format!("XML-DSig self-test: a valid signature did not verify: {e}"))?;
    if !verified.contains(SELF_TEST_EMAIL) {
        return Err("XML-DSig self-test: the verified content is not the signed one".into());
    }
    let tampered = SELF_TEST_ASSERTION.replace(SELF_TEST_EMAIL, "someone-else@example.invalid");
    // libxmlsec1's error output is off from `init_xml_libraries` on, for good: this expected
    // failure prints nothing, and neither does any later one.
    let refused = verify(&tampered).is_err();
    if !refused {
        return Err("XML-DSig self-test: a modified assertion verified".into());
    }
    Ok(())
}

/// The same known answer through samael, which initialises libxmlsec1 and its OpenSSL
/// back end on first use: run once, before this crate's own verification path
/// (`verify::verified_bytes`) touches libxmlsec1.
pub(super) fn samael_known_answer() -> bool {
    super::verify::init_xml_libraries();
    let signer = [CertificateDer::from(SELF_TEST_SIGNER.to_vec())];
    let verify = |xml: &str| {
        XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
            xml,
            &signer,
            ReduceMode::PreDigest,
            Some(&[AllowedSignatureAlgorithm::RsaSha256]),
        )
    };
    let tampered = SELF_TEST_ASSERTION.replace(SELF_TEST_EMAIL, "someone-else@example.invalid");
    verify(SELF_TEST_ASSERTION).is_ok_and(|v| v.contains(SELF_TEST_EMAIL))
        && verify(&tampered).is_err()
}
