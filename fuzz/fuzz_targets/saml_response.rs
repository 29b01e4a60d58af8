//! The ACS path: the POST binding's base64 → the input guards → the structure checks →
//! signature verification (libxmlsec1) → the SAML rules, against one registered IdP. The
//! fuzzer's input is tried both as the XML text and as the form field's base64.
#![no_main]

use std::sync::OnceLock;

use identity_shared::idps::Idp;
use libfuzzer_sys::fuzz_target;
use sso_acs::saml::idp_signer::IdpSigner;
use sso_acs::saml::{Sp, decode_post, routing, validate};

const NOW: i64 = 1_800_000_000;

fn idp() -> &'static Idp {
    static IDP: OnceLock<Idp> = OnceLock::new();
    IDP.get_or_init(|| {
        sso_acs::saml::self_test().expect("the XML-DSig stack works");
        let signer = IdpSigner::generate("fuzz IdP").expect("signer");
        Idp {
            id: "acme".into(),
            entity_id: "https://idp.acme.example/saml".into(),
            sso_url: "https://idp.acme.example/sso".into(),
            slo_url: Some("https://idp.acme.example/slo".into()),
            certificates: vec![signer.certificate_base64()],
            domains: vec!["acme.example".into()],
            team: None,
            enterprise: None,
            allow_idp_initiated: true,
            require_mfa: false,
            mfa_contexts: vec![],
            want_authn_requests_signed: false,
            any_domain: false,
            development: false,
            generation: String::new(),
            created_at: 0,
            version: 1,
        }
    })
}

fn check(xml: &str) {
    let sp = Sp::from_base_url("https://id.example.com");
    let _ = routing(xml);
    let _ = validate(xml, idp(), &sp, None, NOW);
    let _ = validate(xml, idp(), &sp, Some("_request"), NOW);
}

fuzz_target!(|data: &[u8]| {
    let _ = idp();
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(xml) = decode_post(text) {
            check(&xml);
        }
        check(text);
    }
});
