//! The `sso-acs` Lambda: wiring only. Everything a request needs is made during the init
//! phase: configuration, the AWS SDK clients, the keys this function uses (fetched), the
//! DynamoDB connection (opened with a read of the sessions table), and the XML-DSig stack
//! (libxml2, libxmlsec1, OpenSSL — linked statically, see build.rs), initialised and
//! checked by a self-test before the first request.

use std::ffi::c_int;

use identity_shared::store::Table;
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
};

/// A SAML assertion signed (RSA-SHA256, exclusive c14n, enveloped) by a throw-away key whose
/// private half no longer exists, and that key's certificate (DER).
const SELF_TEST_ASSERTION: &str = include_str!("../selftest/signed-assertion.xml");
const SELF_TEST_SIGNER: &[u8] = include_bytes!("../selftest/signer.der");
const SELF_TEST_EMAIL: &str = "self-test@example.invalid";

/// Known-answer test of signature verification, as the ACS will use it: the signed
/// assertion verifies and yields its content; the same assertion with its NameID changed
/// does not. Initialises libxml2, libxmlsec1 and OpenSSL on the way. Any other outcome
/// means the XML-DSig stack cannot be trusted, and the function does not start.
fn xmldsig_self_test() -> Result<(), String> {
    let signer = [CertificateDer::from(SELF_TEST_SIGNER.to_vec())];
    let verify = |xml: &str| {
        XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
            xml,
            &signer,
            ReduceMode::PreDigest,
            Some(&[AllowedSignatureAlgorithm::RsaSha256]),
        )
    };
    let verified = verify(SELF_TEST_ASSERTION)
        .map_err(|e| format!("XML-DSig self-test: a valid signature did not verify: {e}"))?;
    if !verified.contains(SELF_TEST_EMAIL) {
        return Err("XML-DSig self-test: the verified content is not the signed one".into());
    }
    let tampered = SELF_TEST_ASSERTION.replace(SELF_TEST_EMAIL, "someone-else@example.invalid");
    // libxmlsec1 prints each failure to stderr; this one is expected, so it is kept out of
    // the function's log (JSON lines) while it runs.
    let refused = with_xmlsec_errors_silenced(|| verify(&tampered).is_err());
    if !refused {
        return Err("XML-DSig self-test: a modified assertion verified".into());
    }
    Ok(())
}

unsafe extern "C" {
    // libxmlsec1 (xmlsec/errors.h), linked through samael: whether its default error
    // callback prints.
    fn xmlSecErrorsDefaultCallbackEnableOutput(enabled: c_int);
}

/// Runs `f` with libxmlsec1's error output switched off, then restores its default. Only
/// during init, before any request (nothing else uses libxmlsec1 concurrently).
fn with_xmlsec_errors_silenced<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sets one flag in libxmlsec1; no pointers involved.
    unsafe { xmlSecErrorsDefaultCallbackEnableOutput(0) };
    let out = f();
    unsafe { xmlSecErrorsDefaultCallbackEnableOutput(1) };
    out
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    xmldsig_self_test()?;
    let state = identity_shared::AppState::for_lambda(sso_acs::WARM).await?;
    state.warm_store(Table::Sessions).await?;
    lambda_http::run(sso_acs::app(state)).await
}
