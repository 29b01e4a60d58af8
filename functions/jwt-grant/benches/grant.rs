//! The JWT bearer grant's in-process handling: `cargo bench -p jwt-grant`.
//!
//! - `verify/*`: the pure part (parse the assertion, verify its signature with the
//!   registered certificate, check the claims), per algorithm.
//! - `grant/*`: the whole grant on the embedded store, as the route runs it: parse, client
//!   read, signature, claims, `jti` consumed (a conditional write), account read,
//!   pre-authorization, access token issued (ES256), login history written. Each iteration
//!   gets a freshly signed assertion (signing is not timed).
//! - `route/*`: the same through jwt-grant's router (layers, form parsing, JSON answer), as
//!   Lambda runs it, without a network.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use identity_shared::AppState;
use identity_shared::accounts::{AccountStatus, Accounts, Email};
use identity_shared::config::{Config, SecretsSpec, StoreSpec};
use identity_shared::jwt_clients::{Certificate, JwtClients};
use identity_shared::secret::SecretString;
use jwt_grant::grant::{self, Origin, Via};
use jwt_grant::{assertion, sign};
use tower::ServiceExt;

const BASE: &str = "https://id.example.com";

struct Key {
    pem: SecretString,
    cert: Certificate,
}

fn key(alg: &'static rcgen::SignatureAlgorithm) -> Key {
    let pair = if alg == &rcgen::PKCS_RSA_SHA256 {
        rcgen::KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).unwrap()
    } else {
        rcgen::KeyPair::generate_for(alg).unwrap()
    };
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    Key {
        pem: SecretString::new(pair.serialize_pem()),
        cert: Certificate::from_pem(&cert.pem(), 0).unwrap(),
    }
}

fn claims(client_id: &str, now: i64) -> serde_json::Value {
    serde_json::json!({
        "iss": client_id, "sub": "ci@example.com", "aud": BASE,
        "iat": now, "exp": now + 120,
        "jti": identity_shared::crypto::b64url(&identity_shared::crypto::random_bytes(16)),
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        ("ES256", key(&rcgen::PKCS_ECDSA_P256_SHA256)),
        ("RS256-2048", key(&rcgen::PKCS_RSA_SHA256)),
    ];
    let (state, client_id) = rt.block_on(async {
        let config = Config::new(
            BASE.into(),
            StoreSpec::Embedded(dir.path().to_path_buf()),
            SecretsSpec::Embedded,
        )
        .unwrap();
        let state = AppState::build(config, identity_shared::clock::system())
            .await
            .unwrap();
        state.secrets.signing_keys().await.unwrap();
        let user = state
            .store
            .create_account(
                &Email::parse("ci@example.com").unwrap(),
                None,
                AccountStatus::Active,
            )
            .await
            .unwrap();
        let client = state
            .store
            .create_jwt_client(
                "bench",
                keys.iter().map(|(_, k)| k.cert.clone()).collect(),
                &[user],
                &["api".to_string()],
            )
            .await
            .unwrap();
        (state, client.client_id)
    });
    let audiences = grant::audiences(&state);
    let certs = rt
        .block_on(state.store.jwt_client(&client_id))
        .unwrap()
        .unwrap()
        .certificates;

    let mut verify = c.benchmark_group("verify");
    for (name, k) in &keys {
        let token = sign::sign_assertion(&k.pem, &claims(&client_id, state.now())).unwrap();
        verify.bench_function(*name, |b| {
            b.iter(|| {
                let a = assertion::parse(black_box(token.expose_secret())).unwrap();
                a.verify_signature(&certs, state.now()).unwrap();
                a.claims.check(&audiences, state.now()).unwrap();
            })
        });
    }
    verify.finish();

    let mut full = c.benchmark_group("grant");
    let origin = Origin {
        source_ip: Some("192.0.2.1".parse().unwrap()),
        app_id: None,
        via: Via::TokenEndpoint,
    };
    for (name, k) in &keys {
        full.bench_function(format!("{name} embedded store"), |b| {
            b.iter_batched(
                || {
                    let token =
                        sign::sign_assertion(&k.pem, &claims(&client_id, state.now())).unwrap();
                    HashMap::from([
                        ("grant_type".to_string(), grant::JWT_BEARER.to_string()),
                        ("assertion".to_string(), token.expose_secret().to_string()),
                    ])
                },
                |form| {
                    rt.block_on(grant::exchange(&state, Ok(form), &origin))
                        .expect("granted")
                },
                BatchSize::SmallInput,
            )
        });
    }
    full.finish();

    let mut route = c.benchmark_group("route");
    let app = jwt_grant::app(state.clone());
    for (name, k) in &keys {
        route.bench_function(format!("{name} POST /oauth/jwt/token"), |b| {
            b.iter_batched(
                || {
                    let token =
                        sign::sign_assertion(&k.pem, &claims(&client_id, state.now())).unwrap();
                    axum::http::Request::post(grant::TOKEN_PATH)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(axum::body::Body::from(format!(
                            "grant_type={}&assertion={}",
                            grant::JWT_BEARER,
                            token.expose_secret()
                        )))
                        .unwrap()
                },
                |req| {
                    let response = rt.block_on(app.clone().oneshot(req)).unwrap();
                    assert_eq!(response.status(), 200);
                    response
                },
                BatchSize::SmallInput,
            )
        });
    }
    route.finish();
}

criterion_group! {
    name = grant_benches;
    config = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(grant_benches);
