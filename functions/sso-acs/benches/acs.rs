//! The ACS decision: `decode_post` + `validate` of a realistic signed Response (~5 KB with
//! one signature, ~7 KB with two), as `POST /sso/acs` runs it before the store.
//!
//! `cargo bench -p sso-acs --features idp-signer --bench acs`
//!
//! - `acs/assertion_signed`: the Assertion signed (Entra ID's default).
//! - `acs/response_signed`: the Response signed.
//! - `acs/both_signed`: Response and Assertion signed (two xmlsec verifications).
//! - `acs/refused_unregistered_key`: a response signed by a key that is not registered.

use std::hint::black_box;

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use identity_shared::idps::Idp;
use sso_acs::saml::idp_signer::{IdpSigner, ResponseSpec, Sign};
use sso_acs::saml::{self, Refusal, Sp};

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn benches(c: &mut Criterion) {
    let signer = IdpSigner::generate("bench IdP").unwrap();
    let sp = Sp::from_base_url("https://id.example.com");
    let idp = Idp {
        id: "acme".into(),
        entity_id: "http://www.okta.com/exk1bench".into(),
        sso_url: "https://acme.okta.com/app/acme_identity/exk1bench/sso/saml".into(),
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
        created_at: NOW,
        version: 0,
    };
    let spec = |sign| ResponseSpec {
        issuer: idp.entity_id.clone(),
        destination: sp.acs_url.clone(),
        audience: sp.entity_id.clone(),
        recipient: sp.acs_url.clone(),
        email: "alice.smith@acme.example".into(),
        in_response_to: Some("_req1".into()),
        authn_context: None,
        now: NOW,
        lifetime_secs: 300,
        sign,
    };
    let encode = |xml: String| base64::engine::general_purpose::STANDARD.encode(xml);

    let mut group = c.benchmark_group("acs");
    for (name, sign) in [
        ("assertion_signed", Sign::Assertion),
        ("response_signed", Sign::Response),
        ("both_signed", Sign::Both),
    ] {
        let xml = signer.response(&spec(sign)).unwrap();
        eprintln!("acs/{name}: {} bytes of XML", xml.len());
        let posted = encode(xml);
        saml::validate(
            &saml::decode_post(&posted).unwrap(),
            &idp,
            &sp,
            Some("_req1"),
            NOW + 5,
        )
        .expect("the benchmarked response is valid");
        group.bench_function(name, |b| {
            b.iter(|| {
                let xml = saml::decode_post(black_box(&posted)).unwrap();
                saml::validate(&xml, &idp, &sp, Some("_req1"), NOW + 5).unwrap()
            })
        });
    }
    let other = IdpSigner::generate("not registered").unwrap();
    let posted = encode(other.response(&spec(Sign::Assertion)).unwrap());
    group.bench_function("refused_unregistered_key", |b| {
        b.iter(|| {
            let xml = saml::decode_post(black_box(&posted)).unwrap();
            let refused = saml::validate(&xml, &idp, &sp, Some("_req1"), NOW + 5).unwrap_err();
            assert_eq!(refused, Refusal::UntrustedSignature);
        })
    });
    group.finish();
}

criterion_group!(acs, benches);
criterion_main!(acs);
