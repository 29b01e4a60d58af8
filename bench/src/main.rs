//! `identity-bench`: what `bench/run.sh` runs in-process, and its report.
//!
//! - `fixtures DIR`: the inputs every side measures in the same run: a signed SAML Response
//!   (Assertion signed, RSA-SHA256, exclusive c14n) and a tampered copy; an RS256 JWT
//!   bearer assertion and a tampered copy, with the keys the peers need.
//! - `acs DIR`, `grant DIR`: our rows (and samael's own validation, the naive baseline), as
//!   JSON lines `{"key","value","unit"}` on stdout.
//! - `worst DIR`: the worst case per unauthenticated request (worst.rs).
//! - `codeflow …`: the code flow over HTTP against `identity serve` (codeflow.rs).
//! - `bootstraps DIR RUNS`: the Lambda bootstrap rows (bootstraps.rs), inside the test
//!   command's service environment.
//! - `soak IDENTITY_BIN SECONDS CLIENTS MD JSON`: the concurrency soak and its audit
//!   (soak.rs), inside the test command's service environment (`bench/soak.sh`).
//! - `report ROWS MD JSON`: the table (ours, the peer's, the ratio, the budget, met or not).
//!
//! Every timing is the median of many calls after a warm-up, on one thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine;
use identity_shared::AppState;
use identity_shared::accounts::{AccountStatus, Accounts, Email};
use identity_shared::config::{Config, SecretsSpec, StoreSpec};
use identity_shared::idps::Idp;
use identity_shared::jwt_clients::{Certificate, JwtClients};
use identity_shared::secret::SecretString;
use jwt_grant::grant::{self, Origin, Via};
use sso_acs::saml::idp_signer::{IdpSigner, ResponseSpec, Sign};
use sso_acs::saml::{self, Sp};

mod bootstraps;
mod codeflow;
mod report;
mod soak;
mod worst;

type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

const SP_BASE: &str = "https://id.example.com";
const IDP_ENTITY: &str = "http://www.okta.com/exk1bench";
const REQUEST_ID: &str = "_bench_request_1";
const JWT_BASE: &str = "https://id.example.com";

fn main() -> R {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["fixtures", dir] => fixtures(Path::new(dir)),
        ["acs", dir] => acs(Path::new(dir)),
        ["grant", dir] => grant(Path::new(dir)),
        ["worst", dir] => worst::run(Path::new(dir)),
        ["report", rows, md, json] => {
            report::write(Path::new(rows), Path::new(md), Path::new(json))
        }
        ["codeflow", rest @ ..] => codeflow::run(rest),
        ["bootstraps", rest @ ..] => bootstraps::run(rest),
        ["soak", rest @ ..] => soak::run(rest),
        _ => Err(
            "usage: identity-bench fixtures DIR | acs DIR | grant DIR | worst DIR | \
codeflow BASE CLIENT_ID SECRET REDIRECT_URI EMAIL PASSWORD SECONDS WORKERS | \
bootstraps DIR RUNS | soak IDENTITY_BIN SECONDS CLIENTS MD JSON | report ROWS MD JSON"
                .into(),
        ),
    }
}

/// The median, in microseconds, of `n` calls of `f` after `n / 10` unmeasured ones.
pub fn median_us(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

pub fn row(key: &str, value: f64, unit: &str) {
    println!(
        "{}",
        serde_json::json!({"key": key, "value": (value * 100.0).round() / 100.0, "unit": unit})
    );
}

fn now() -> i64 {
    identity_shared::clock::system().now()
}

fn write(dir: &Path, name: &str, content: &str) -> R {
    std::fs::write(dir.join(name), content)?;
    Ok(())
}

fn read(dir: &Path, name: &str) -> R<String> {
    Ok(std::fs::read_to_string(dir.join(name))?)
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn fixtures(dir: &Path) -> R {
    let saml_dir = dir.join("saml");
    let jwt_dir = dir.join("jwt");
    std::fs::create_dir_all(&saml_dir)?;
    std::fs::create_dir_all(&jwt_dir)?;

    // SAML: a Response as Okta sends it (Assertion signed), valid for 15 minutes from now
    // so every side of the run sees it in date.
    let signer = IdpSigner::generate("bench IdP")?;
    let sp = Sp::from_base_url(SP_BASE);
    let issued = now();
    let xml = signer.response(&ResponseSpec {
        issuer: IDP_ENTITY.into(),
        destination: sp.acs_url.clone(),
        audience: sp.entity_id.clone(),
        recipient: sp.acs_url.clone(),
        email: "alice.smith@acme.example".into(),
        in_response_to: Some(REQUEST_ID.into()),
        authn_context: None,
        now: issued,
        lifetime_secs: 900,
        sign: Sign::Assertion,
    })?;
    let tampered = xml.replacen("alice.smith@acme.example", "mallory@acme.example", 1);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    write(&saml_dir, "response.b64", &b64(&xml))?;
    write(&saml_dir, "tampered.b64", &b64(&tampered))?;
    write(&saml_dir, "idp-cert.pem", signer.cert_pem())?;
    write(
        &saml_dir,
        "config.json",
        &serde_json::json!({
            "sp_entity_id": sp.entity_id,
            "acs_url": sp.acs_url,
            "idp_entity_id": IDP_ENTITY,
            "idp_sso_url": "https://acme.okta.com/app/bench/sso/saml",
            "request_id": REQUEST_ID,
            "issued_at": issued,
            "idp_cert_base64": signer.certificate_base64(),
            "bytes": xml.len(),
        })
        .to_string(),
    )?;

    // JWT bearer: an RS256 assertion (RSA-2048) from a CI system, and the ES256 key an
    // access token is signed with.
    let client =
        rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
    let client_cert = rcgen::CertificateParams::new(Vec::<String>::new())?.self_signed(&client)?;
    let signing = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let claims = assertion_claims("bench-client", now(), 900);
    let token =
        jwt_grant::sign::sign_assertion(&SecretString::new(client.serialize_pem()), &claims)?;
    let token = token.expose_secret().to_string();
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let tampered_claims = serde_json::json!({"sub": "root@example.com"});
    let mut payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&parts[1])?,
    )?;
    payload["sub"] = tampered_claims["sub"].clone();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    write(&jwt_dir, "assertion.jwt", &token)?;
    write(&jwt_dir, "tampered.jwt", &parts.join("."))?;
    write(&jwt_dir, "client-public.pem", &client.public_key_pem())?;
    write(&jwt_dir, "client-key.pem", &client.serialize_pem())?;
    write(&jwt_dir, "client-cert.pem", &client_cert.pem())?;
    write(&jwt_dir, "signing-es256.pem", &signing.serialize_pem())?;
    write(
        &jwt_dir,
        "config.json",
        &serde_json::json!({"audience": JWT_BASE, "issuer": "bench-client", "access_token_issuer": JWT_BASE})
            .to_string(),
    )?;
    Ok(())
}

/// An assertion's claims, good for `lifetime` seconds (ours takes at most 5 minutes).
fn assertion_claims(client_id: &str, now: i64, lifetime: i64) -> serde_json::Value {
    serde_json::json!({
        "iss": client_id, "sub": "ci@example.com", "aud": JWT_BASE,
        "iat": now, "exp": now + lifetime,
        "jti": identity_shared::crypto::b64url(&identity_shared::crypto::random_bytes(16)),
    })
}

// ---------------------------------------------------------------------------------------
// SAML ACS
// ---------------------------------------------------------------------------------------

fn bench_idp(config: &serde_json::Value) -> Idp {
    Idp {
        id: "acme".into(),
        entity_id: IDP_ENTITY.into(),
        sso_url: config["idp_sso_url"].as_str().unwrap_or_default().into(),
        slo_url: None,
        certificates: vec![
            config["idp_cert_base64"]
                .as_str()
                .unwrap_or_default()
                .into(),
        ],
        domains: vec!["acme.example".into()],
        team: None,
        enterprise: None,
        allow_idp_initiated: false,
        require_mfa: false,
        mfa_contexts: vec![],
        want_authn_requests_signed: false,
        any_domain: false,
        development: false,
        generation: String::new(),
        created_at: 0,
        version: 0,
    }
}

fn acs(dir: &Path) -> R {
    let saml_dir = dir.join("saml");
    let config: serde_json::Value = serde_json::from_str(&read(&saml_dir, "config.json")?)?;
    let posted = read(&saml_dir, "response.b64")?;
    let tampered = read(&saml_dir, "tampered.b64")?;
    let idp = bench_idp(&config);
    let sp = Sp::from_base_url(SP_BASE);
    let at = config["issued_at"].as_i64().ok_or("issued_at")? + 5;
    let ours = |encoded: &str| {
        saml::decode_post(encoded)
            .and_then(|xml| saml::validate(&xml, &idp, &sp, Some(REQUEST_ID), at))
    };
    ours(&posted).map_err(|r| format!("our validation refused the fixture: {r}"))?;
    if ours(&tampered).is_ok() {
        return Err("our validation accepted the tampered response".into());
    }
    row(
        "acs.ours",
        median_us(3000, || {
            std::hint::black_box(ours(std::hint::black_box(&posted)).ok());
        }),
        "us",
    );

    // samael's own ServiceProvider validation (xmlsec through samael, its own rules).
    let metadata = format!(
        concat!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">"#,
            r#"<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#,
            r#"<ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/>"#,
            r#"</md:IDPSSODescriptor></md:EntityDescriptor>"#
        ),
        entity = IDP_ENTITY,
        cert = config["idp_cert_base64"].as_str().unwrap_or_default(),
        sso = config["idp_sso_url"].as_str().unwrap_or_default(),
    );
    let samael_sp = samael::service_provider::ServiceProvider {
        entity_id: Some(sp.entity_id.clone()),
        acs_url: Some(sp.acs_url.clone()),
        idp_metadata: metadata.parse()?,
        allow_idp_initiated: false,
        allowed_signature_algorithms: Some(vec![
            samael::crypto::AllowedSignatureAlgorithm::RsaSha256,
        ]),
        ..Default::default()
    };
    let theirs = |encoded: &str| {
        samael_sp
            .parse_base64_response(encoded, Some(&[REQUEST_ID]))
            .is_ok()
    };
    if !theirs(&posted) {
        return Err("samael refused the fixture".into());
    }
    if theirs(&tampered) {
        return Err("samael accepted the tampered response".into());
    }
    row(
        "acs.samael",
        median_us(1000, || {
            std::hint::black_box(theirs(std::hint::black_box(&posted)));
        }),
        "us",
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// JWT bearer grant
// ---------------------------------------------------------------------------------------

fn grant(dir: &Path) -> R {
    let jwt_dir = dir.join("jwt");
    let key = SecretString::new(read(&jwt_dir, "client-key.pem")?);
    let cert = Certificate::from_pem(&read(&jwt_dir, "client-cert.pem")?, now())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store_dir = tempfile::tempdir()?;
    let (state, client_id) = rt.block_on(async {
        let config = Config::new(
            JWT_BASE.into(),
            StoreSpec::Embedded(PathBuf::from(store_dir.path())),
            SecretsSpec::Embedded,
        )?;
        let state = AppState::build(config, identity_shared::clock::system()).await?;
        state.secrets.signing_keys().await?;
        let user = state
            .store
            .create_account(
                &Email::parse("ci@example.com")?,
                None,
                AccountStatus::Active,
            )
            .await?;
        let client = state
            .store
            .create_jwt_client("bench", vec![cert], &[user], &["api".to_string()])
            .await?;
        Ok::<_, Box<dyn std::error::Error>>((state, client.client_id))
    })?;
    let origin = Origin {
        source_ip: Some("192.0.2.1".parse()?),
        app_id: None,
        via: Via::TokenEndpoint,
    };
    // Each call gets a fresh assertion (a new jti); making it is not timed.
    let n = 3000;
    let forms: Vec<HashMap<String, String>> = (0..n + n / 10)
        .map(|_| {
            let token =
                jwt_grant::sign::sign_assertion(&key, &assertion_claims(&client_id, now(), 240))
                    .expect("sign");
            HashMap::from([
                ("grant_type".to_string(), grant::JWT_BEARER.to_string()),
                ("assertion".to_string(), token.expose_secret().to_string()),
            ])
        })
        .collect();
    let mut forms = forms.into_iter();
    let value = median_us(n, || {
        let form = forms.next().expect("enough assertions");
        rt.block_on(grant::exchange(&state, Ok(form), &origin))
            .expect("granted");
    });
    row("grant.ours", value, "us");
    Ok(())
}
