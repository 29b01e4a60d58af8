//! `POST /oauth/jwt/token` and `/apps/{app}/authorizations[/{name}]` through jwt-grant's
//! router (as Lambda runs it) with a pinned clock. The checklist of issue 6: assertions from
//! real JWT libraries are accepted; each refusal has its own test, and each refused attempt
//! is in the login history with its reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use http::{Request, StatusCode, header};
use identity_shared::accounts::Accounts;
use identity_shared::api_keys::ApiKeys;
use identity_shared::apps::{App, Apps};
use identity_shared::authorizations::{NamedAuthorizations, Sealing, TokenSeal, default_alias};
use identity_shared::jwt_clients::JwtClients;
use identity_shared::login_history::{HistoryFilter, LoginHistory, Outcome};
use identity_shared::secret::SecretString;
use identity_shared::tokens;
use identity_tests::jwt_suite::{
    Harness, TestKey, account, b64, newest_attempt, shared_ec, shared_rsa,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use jwt_grant::grant::{self, Origin, Via};
use serde_json::{Value, json};
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------
// Accepted
// ---------------------------------------------------------------------------------------

fn check_token_response(h: &Harness, body: &Value) {
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "api read-protected");
    assert_eq!(body["instance_url"], h.base());
    assert!(body.get("refresh_token").is_none(), "no refresh token");
    assert_eq!(
        body.as_object().unwrap().len(),
        5,
        "exactly access_token, token_type, expires_in, scope, instance_url: {body}"
    );
}

#[tokio::test]
async fn es256_assertion_from_jsonwebtoken_is_accepted() {
    let h = Harness::new(shared_ec()).await;
    let body = h.granted(&h.assertion()).await;
    check_token_response(&h, &body);
    let attempt = newest_attempt(&h.state.store).await;
    assert_eq!(attempt.reason, "access token issued");
    assert_eq!(attempt.scope.as_deref(), Some("api read-protected"));
    assert_eq!(attempt.account_id.as_deref(), Some(h.ci.user.id.as_str()));
}

#[tokio::test]
async fn rs256_assertion_from_jsonwebtoken_is_accepted() {
    let h = Harness::new(shared_rsa()).await;
    let body = h.granted(&h.assertion()).await;
    check_token_response(&h, &body);
}

/// The issued token is the token endpoint's RFC 9068 JWT: it verifies with `tokens::verify`
/// and, independently, with the published JWKS (as a resource server would).
#[tokio::test]
async fn issued_token_verifies_with_the_jwks() {
    let h = Harness::new(shared_ec()).await;
    let body = h.granted(&h.assertion()).await;
    let token = body["access_token"].as_str().unwrap();
    let keys = h.state.secrets.signing_keys().await.unwrap();
    let claims = tokens::verify(&keys, token, h.base(), h.now()).expect("verifies");
    assert_eq!(claims.sub, h.ci.user.id);
    assert_eq!(claims.client_id, h.ci.client.client_id);
    assert_eq!(claims.scope, "api read-protected");
    assert!(
        claims.gid.is_some(),
        "the token belongs to a revocable grant"
    );

    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(keys.jwks()).unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is in the JWKS");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[h.base()]);
    validation.set_audience(&[h.base()]);
    let decoded =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("verifies with the JWKS");
    assert_eq!(decoded.header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(decoded.claims["sub"], h.ci.user.id.as_str());
}

#[tokio::test]
async fn token_url_is_an_accepted_audience_and_a_subset_of_scopes_can_be_asked_for() {
    let h = Harness::new(shared_ec()).await;
    let mut c = h.claims();
    c["aud"] = json!([
        "https://other.example.com",
        h.state.config.url(grant::TOKEN_PATH)
    ]);
    let body = format!(
        "grant_type={}&assertion={}&scope=api",
        grant::JWT_BEARER,
        h.key.sign(&c)
    );
    let (status, _, body) = h.post("application/x-www-form-urlencoded", body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "api");
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A tool the test needs (tests/run.sh installs it). A missing one is a failure, unless
/// `IDENTITY_TEST_SKIP_SERVICES=1` (then the test says it was skipped).
fn required(found: Option<PathBuf>, what: &str) -> Option<PathBuf> {
    if found.is_none() {
        if identity_tests::services_required() {
            panic!("{what} is missing: tests/run.sh installs it");
        }
        eprintln!("skipped: {what} not found; run ./tests/run.sh");
    }
    found
}

fn works(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn python_with_pyjwt() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("IDENTITY_TEST_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push(workspace().join(".test-deps/venv/bin/python3"));
    candidates.push("python3".into());
    candidates
        .into_iter()
        .find(|p| works(p, &["-c", "import jwt, cryptography"]))
}

fn openssl() -> Option<PathBuf> {
    let p = PathBuf::from("openssl");
    works(&p, &["version"]).then_some(p)
}

/// `openssl req -x509 -newkey SPEC -nodes`, as the AppLink documentation says; the key pair.
fn openssl_key(openssl: &Path, dir: &Path, newkey: &[&str], alg: Algorithm) -> (TestKey, PathBuf) {
    let (key, crt) = (dir.join("server.key"), dir.join("server.crt"));
    let status = Command::new(openssl)
        .args(["req", "-x509"])
        .args(newkey)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .args(["-days", "365", "-nodes", "-subj", "/CN=ci.example.com"])
        .output()
        .expect("run openssl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (
        TestKey {
            key_pem: std::fs::read_to_string(&key).unwrap(),
            cert_pem: std::fs::read_to_string(&crt).unwrap(),
            alg,
        },
        key,
    )
}

fn pyjwt_assertion(python: &Path, key_file: &Path, h: &Harness, alg: &str) -> String {
    let out = Command::new(python)
        .arg(workspace().join("tests/pyjwt_assertion.py"))
        .arg(key_file)
        .args(["--iss", &h.ci.client.client_id])
        .args(["--sub", &h.ci.user.email])
        .args(["--aud", h.base()])
        .args(["--now", &h.now().to_string()])
        .args(["--alg", alg])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The AppLink recipe: `openssl req -x509 -newkey rsa:4096 …`, the certificate registered,
/// the assertion signed by PyJWT with the key (RS256, and PS256 with the same key).
#[tokio::test]
async fn pyjwt_rs256_assertion_with_an_openssl_4096_bit_key_is_accepted() {
    let Some(python) = required(python_with_pyjwt(), "python3 with PyJWT[crypto]") else {
        return;
    };
    let Some(openssl) = required(openssl(), "openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (key, key_file) = openssl_key(
        &openssl,
        dir.path(),
        &["-newkey", "rsa:4096"],
        Algorithm::RS256,
    );
    let h = Harness::new(&key).await;
    assert_eq!(h.ci.client.certificates[0].key_bits, 4096);
    let assertion = pyjwt_assertion(&python, &key_file, &h, "RS256");
    assert_eq!(
        jsonwebtoken::decode_header(&assertion).unwrap().alg,
        Algorithm::RS256
    );
    let body = h.granted(&assertion).await;
    check_token_response(&h, &body);
    let pss = pyjwt_assertion(&python, &key_file, &h, "PS256");
    h.granted(&pss).await;
    h.refused(&assertion, "invalid_grant", "jti was already used")
        .await;
}

#[tokio::test]
async fn pyjwt_es256_assertion_with_an_openssl_p256_key_is_accepted() {
    let Some(python) = required(python_with_pyjwt(), "python3 with PyJWT[crypto]") else {
        return;
    };
    let Some(openssl) = required(openssl(), "openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (key, key_file) = openssl_key(
        &openssl,
        dir.path(),
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        Algorithm::ES256,
    );
    let h = Harness::new(&key).await;
    let assertion = pyjwt_assertion(&python, &key_file, &h, "ES256");
    check_token_response(&h, &h.granted(&assertion).await);
}

// ---------------------------------------------------------------------------------------
// Refused: the form
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn repeated_parameters_are_refused() {
    let h = Harness::new(shared_ec()).await;
    let a = h.assertion();
    let body = format!(
        "grant_type={0}&assertion={a}&assertion={a}",
        grant::JWT_BEARER
    );
    let (status, _, body) = h.post("application/x-www-form-urlencoded", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("repeated")
    );
    let attempt = newest_attempt(&h.state.store).await;
    assert_eq!(attempt.error.as_deref(), Some("invalid_request"));
    assert_eq!(
        attempt.client_id, None,
        "nothing was read from the assertion"
    );
}

#[tokio::test]
async fn other_grant_types_are_unsupported() {
    let h = Harness::new(shared_ec()).await;
    let (status, headers, body) = h
        .post(
            "application/x-www-form-urlencoded",
            format!("grant_type=client_credentials&assertion={}", h.assertion()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn missing_assertion_and_non_form_bodies_are_invalid_requests() {
    let h = Harness::new(shared_ec()).await;
    let (_, _, body) = h
        .post(
            "application/x-www-form-urlencoded",
            format!("grant_type={}", grant::JWT_BEARER),
        )
        .await;
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_description"], "assertion is required");
    let (status, _, body) = h
        .post(
            "application/json",
            json!({"grant_type": grant::JWT_BEARER, "assertion": h.assertion()}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    let history = h
        .state
        .store
        .login_attempts(&HistoryFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "both attempts are in the history");
}

// ---------------------------------------------------------------------------------------
// Refused: the assertion (one test each)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&h.claims())
    );
    h.refused(&unsigned, "invalid_grant", "alg none").await;
    let attempt = newest_attempt(&h.state.store).await;
    assert_eq!(
        attempt.client_id, None,
        "refused before the claims were read"
    );
}

/// The classic key-confusion attack: HS256 with the (public) certificate as the HMAC key.
#[tokio::test]
async fn hs256_keyed_with_the_certificate_is_refused() {
    let h = Harness::new(shared_rsa()).await;
    let cert = &h.ci.client.certificates[0];
    let der = pem::parse(&cert.pem).unwrap().into_contents();
    for secret in [
        cert.pem.as_bytes().to_vec(),
        der,
        cert.public_key_bytes().unwrap(),
    ] {
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &h.claims(),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        h.refused(&forged, "invalid_grant", "HMAC").await;
    }
}

/// A header naming the registered certificate (which does not help: only its key verifies).
fn attacker_header(registered: &Harness) -> Value {
    let cert = &registered.ci.client.certificates[0];
    json!({"alg": "ES256", "typ": "JWT", "kid": cert.x5t_s256, "x5t#S256": cert.x5t_s256})
}

#[tokio::test]
async fn jwk_header_naming_the_attackers_key_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let attacker = TestKey::ec();
    let mut header = attacker_header(&h);
    header["jwk"] = attacker.public_jwk();
    let forged = attacker.sign_with_header(&header, &h.claims());
    let d = h.refused(&forged, "invalid_grant", "does not verify").await;
    assert!(d.contains("never used"), "{d}");
}

#[tokio::test]
async fn x5c_header_naming_the_attackers_key_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let attacker = TestKey::ec();
    let mut header = attacker_header(&h);
    header["x5c"] = json!([attacker.x5c()]);
    header.as_object_mut().unwrap().remove("x5t#S256");
    let forged = attacker.sign_with_header(&header, &h.claims());
    let d = h.refused(&forged, "invalid_grant", "does not verify").await;
    assert!(d.contains("never used"), "{d}");
}

#[tokio::test]
async fn jku_header_naming_the_attackers_key_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let attacker = TestKey::ec();
    let mut header = attacker_header(&h);
    header["jku"] = json!("https://attacker.example.com/jwks.json");
    header["x5u"] = json!("https://attacker.example.com/cert.pem");
    header.as_object_mut().unwrap().remove("x5t#S256");
    header.as_object_mut().unwrap().remove("kid");
    let forged = attacker.sign_with_header(&header, &h.claims());
    let d = h.refused(&forged, "invalid_grant", "does not verify").await;
    assert!(d.contains("never used"), "{d}");
}

#[tokio::test]
async fn unknown_iss_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let mut c = h.claims();
    c["iss"] = json!("jwt_NotARegisteredClient0000");
    let (_, headers, _) = h.token(&h.key.sign(&c)).await;
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        "Basic realm=\"identity\""
    );
    h.refused(
        &h.key.sign(&c),
        "invalid_client",
        "not the client_id of a registered JWT client",
    )
    .await;
    let attempt = newest_attempt(&h.state.store).await;
    assert!(!attempt.client_known);
    assert_eq!(
        attempt.client_id.as_deref(),
        Some("jwt_NotARegisteredClient0000")
    );
}

#[tokio::test]
async fn key_not_registered_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let stranger = TestKey::ec();
    h.refused(
        &stranger.sign(&h.claims()),
        "invalid_grant",
        "does not verify with any certificate registered for this client",
    )
    .await;
}

#[tokio::test]
async fn removed_certificate_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let replacement = TestKey::ec();
    let id = &h.ci.client.client_id;
    h.state
        .store
        .add_certificate(id, replacement.certificate(h.now()))
        .await
        .unwrap();
    h.state
        .store
        .remove_certificate(id, &h.ci.client.certificates[0].x5t_s256)
        .await
        .unwrap();
    h.refused(&h.assertion(), "invalid_grant", "does not verify")
        .await;
    // Naming the removed certificate says so.
    let header = json!({"alg": "ES256", "x5t#S256": h.ci.client.certificates[0].x5t_s256});
    h.refused(
        &h.key.sign_with_header(&header, &h.claims()),
        "invalid_grant",
        "not registered",
    )
    .await;
}

#[tokio::test]
async fn bad_signature_is_refused() {
    let h = Harness::new(shared_rsa()).await;
    let a = h.assertion();
    let (input, sig) = a.rsplit_once('.').unwrap();
    let mut raw = identity_shared::crypto::b64url_decode(sig).unwrap();
    raw[10] ^= 0x01;
    let broken = format!("{input}.{}", identity_shared::crypto::b64url(&raw));
    h.refused(&broken, "invalid_grant", "does not verify").await;
    h.refused(
        &format!("{input}.bm90LWEtc2lnbmF0dXJl"),
        "invalid_grant",
        "does not verify",
    )
    .await;
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let other = account(&h.state.store, "boss@example.com").await;
    h.state
        .store
        .authorize_users(&h.ci.client.client_id, &[other])
        .await
        .unwrap();
    let a = h.assertion();
    let parts: Vec<&str> = a.split('.').collect();
    let mut c = h.claims();
    c["sub"] = json!("boss@example.com");
    let tampered = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    h.refused(&tampered, "invalid_grant", "does not verify")
        .await;
}

#[tokio::test]
async fn expired_assertion_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let mut c = h.claims();
    c["iat"] = json!(h.now() - 200);
    c["exp"] = json!(h.now() - 1);
    h.refused(&h.key.sign(&c), "invalid_grant", "expired").await;
    // The same assertion, signed now and used after it expired.
    let a = h.assertion();
    h.clock.advance(120);
    h.refused(&a, "invalid_grant", "expired").await;
}

#[tokio::test]
async fn exp_more_than_5_minutes_ahead_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let mut c = h.claims();
    c["exp"] = json!(h.now() + 301);
    h.refused(
        &h.key.sign(&c),
        "invalid_grant",
        "more than 5 minutes ahead",
    )
    .await;
    c["exp"] = json!(h.now() + 300);
    h.granted(&h.key.sign(&c)).await;
}

#[tokio::test]
async fn missing_exp_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let mut c = h.claims();
    c.as_object_mut().unwrap().remove("exp");
    h.refused(&h.key.sign(&c), "invalid_grant", "no exp").await;
}

#[tokio::test]
async fn nbf_in_the_future_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let mut c = h.claims();
    c["nbf"] = json!(h.now() + 90);
    h.refused(&h.key.sign(&c), "invalid_grant", "not valid yet")
        .await;
    c["nbf"] = json!(h.now() + 30);
    c["jti"] = json!("within-skew");
    h.granted(&h.key.sign(&c)).await;
}

#[tokio::test]
async fn wrong_aud_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let mut c = h.claims();
    c["aud"] = json!("https://login.salesforce.com");
    h.refused(&h.key.sign(&c), "invalid_grant", "aud").await;
    c.as_object_mut().unwrap().remove("aud");
    h.refused(&h.key.sign(&c), "invalid_grant", "no aud").await;
}

#[tokio::test]
async fn replayed_jti_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let a = h.assertion();
    h.granted(&a).await;
    h.refused(&a, "invalid_grant", "jti was already used").await;
    // A new assertion with the same jti is a replay too.
    let mut c = h.claims();
    c["jti"] = jsonwebtoken::dangerous::insecure_decode::<Value>(&a)
        .unwrap()
        .claims["jti"]
        .clone();
    h.refused(&h.key.sign(&c), "invalid_grant", "jti was already used")
        .await;
}

#[tokio::test]
async fn user_not_pre_authorized_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let outsider = account(&h.state.store, "outsider@example.com").await;
    let mut c = h.claims();
    c["sub"] = json!(outsider.email);
    let d = h
        .refused(&h.key.sign(&c), "invalid_grant", "not pre-authorized")
        .await;
    assert_eq!(d, "user is not pre-authorized for this client");
    let attempt = newest_attempt(&h.state.store).await;
    assert_eq!(attempt.account_id.as_deref(), Some(outsider.id.as_str()));
    assert_eq!(attempt.subject.as_deref(), Some("outsider@example.com"));
}

#[tokio::test]
async fn user_deauthorized_after_the_fact_is_refused() {
    let h = Harness::new(shared_ec()).await;
    h.granted(&h.assertion()).await;
    h.state
        .store
        .deauthorize_users(&h.ci.client.client_id, &[h.ci.user.id.to_string()])
        .await
        .unwrap();
    h.refused(&h.assertion(), "invalid_grant", "not pre-authorized")
        .await;
}

#[tokio::test]
async fn unknown_user_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let mut c = h.claims();
    c["sub"] = json!("ghost@example.com");
    h.refused(&h.key.sign(&c), "invalid_grant", "names no user")
        .await;
    // The jti was consumed by the attempt above (jti comes before sub); a new one.
    c["jti"] = json!("second");
    c["sub"] = json!("not an email");
    h.refused(&h.key.sign(&c), "invalid_grant", "email").await;
}

#[tokio::test]
async fn scope_outside_the_clients_is_refused() {
    let h = Harness::new(shared_ec()).await;
    let body = format!(
        "grant_type={}&assertion={}&scope=api%20admin",
        grant::JWT_BEARER,
        h.assertion()
    );
    let (status, _, body) = h.post("application/x-www-form-urlencoded", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
    let attempt = newest_attempt(&h.state.store).await;
    assert_eq!(attempt.error.as_deref(), Some("invalid_scope"));
}

// ---------------------------------------------------------------------------------------
// Rotation, history, source IP
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn certificate_rotation_two_certificates_work_then_the_removed_one_fails() {
    let h = Harness::new(shared_rsa()).await;
    let new = TestKey::rsa();
    let id = &h.ci.client.client_id;
    h.state
        .store
        .add_certificate(id, new.certificate(h.now()))
        .await
        .unwrap();
    h.granted(&h.assertion()).await;
    h.granted(&new.sign(&h.claims())).await;
    // kid may pick the certificate.
    let header = json!({"alg": "RS256", "kid": new.certificate(0).x5t_s256});
    h.granted(&new.sign_with_header(&header, &h.claims())).await;
    h.state
        .store
        .remove_certificate(id, &h.ci.client.certificates[0].x5t_s256)
        .await
        .unwrap();
    h.refused(&h.assertion(), "invalid_grant", "does not verify")
        .await;
    h.granted(&new.sign(&h.claims())).await;
}

/// A sequence of attempts, good and bad: the history has each, newest first, with its
/// reason, client, subject and source.
#[tokio::test]
async fn login_history_records_each_attempt_with_its_reason() {
    let h = Harness::new(shared_ec()).await;
    h.granted(&h.assertion()).await;
    let mut expired = h.claims();
    expired["exp"] = json!(h.now() - 5);
    h.token(&h.key.sign(&expired)).await;
    let mut stranger = h.claims();
    stranger["sub"] = json!("nobody@example.com");
    h.token(&h.key.sign(&stranger)).await;
    h.token("garbage").await;
    let list = h
        .state
        .store
        .login_attempts(&HistoryFilter::default(), 10)
        .await
        .unwrap();
    let seen: Vec<(Outcome, &str)> = list
        .iter()
        .map(|a| (a.outcome, a.reason.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                Outcome::Failure,
                "the assertion is not a JWT: its header is not base64url JSON"
            ),
            (Outcome::Failure, "sub names no user of this service"),
            (Outcome::Failure, "the assertion has expired (exp)"),
            (Outcome::Success, "access token issued"),
        ]
    );
    let by_client = h
        .state
        .store
        .login_attempts(
            &HistoryFilter {
                client_id: Some(h.ci.client.client_id.clone()),
                user: None,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(by_client.len(), 3, "the garbage attempt named no client");
    assert!(
        list.iter().all(|a| a.source_ip.is_none()),
        "no request context in oneshot"
    );
}

/// In Lambda the source IP comes from API Gateway's request context (`sourceIp`), never from
/// `X-Forwarded-For`, which any client can write.
#[tokio::test]
async fn source_ip_comes_from_the_api_gateway_request_context() {
    let h = Harness::new(shared_ec()).await;
    let body = format!(
        "grant_type={}&assertion={}",
        grant::JWT_BEARER,
        h.assertion()
    );
    let event = json!({
        "version": "2.0",
        "routeKey": "POST /oauth/jwt/token",
        "rawPath": "/oauth/jwt/token",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/x-www-form-urlencoded",
            "host": "id.example.com",
            "x-forwarded-for": "203.0.113.99",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1",
            "domainName": "id.example.com",
            "domainPrefix": "id",
            "http": {
                "method": "POST",
                "path": "/oauth/jwt/token",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "ci",
            },
            "requestId": "req-1",
            "routeKey": "POST /oauth/jwt/token",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1_767_225_600_000_i64,
        },
        "body": body,
        "isBase64Encoded": false,
    });
    let request = lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event");
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, Body::from(body.to_vec()));
    let response = h.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let attempt = newest_attempt(&h.state.store).await;
    assert_eq!(attempt.source_ip.as_deref(), Some("198.51.100.7"));
}

// ---------------------------------------------------------------------------------------
// Named authorizations: GET /apps/{app}/authorizations/{name_or_alias}
// ---------------------------------------------------------------------------------------

/// What `identity admin authorization add` does (`named::add`): the grant (recorded as
/// `admin`), then the credentials saved under the name and the default alias. The stored
/// token, opened.
async fn add_authorization(h: &Harness, app: &App, name: &str) -> SecretString {
    let origin = Origin {
        source_ip: None,
        via: Via::Admin,
        app_id: Some(app.id.clone()),
    };
    let saved = jwt_grant::named::add(&h.state, name, None, &h.assertion(), None, &origin)
        .await
        .expect("added");
    assert_eq!(saved.alias, default_alias(name));
    let keys = h.state.secrets.signing_keys().await.unwrap();
    let seal = TokenSeal::from_signing_keys(&keys).unwrap();
    saved.access_token(&seal).expect("sealed token opens")
}

/// An app owned by the CI user, with one named authorization `org_jwt`.
async fn app_with_authorization(h: &Harness) -> (App, SecretString) {
    let app = h
        .state
        .store
        .create_app("example-app", &h.ci.user)
        .await
        .unwrap();
    let token = add_authorization(h, &app, "org_jwt").await;
    (app, token)
}

/// A bearer token for `email` through the JWT grant, with `scope`.
async fn bearer_for(h: &Harness, email: &str, scope: &str) -> String {
    let mut c = h.claims();
    c["sub"] = json!(email);
    let body = format!(
        "grant_type={}&assertion={}&scope={}",
        grant::JWT_BEARER,
        h.key.sign(&c),
        scope
    );
    let (status, _, body) = h.post("application/x-www-form-urlencoded", body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn fetch(
    h: &Harness,
    path: &str,
    bearer: Option<&str>,
) -> (StatusCode, http::HeaderMap, Value) {
    let mut req = Request::get(path);
    if let Some(b) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {b}"));
    }
    let response = h
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, identity_tests::body_json(response).await)
}

#[tokio::test]
async fn named_authorization_is_fetched_by_name_and_alias_by_a_member_of_the_app() {
    let h = Harness::new(shared_ec()).await;
    let (app, stored) = app_with_authorization(&h).await;
    let admin_attempt = h
        .state
        .store
        .login_attempts(&HistoryFilter::default(), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        admin_attempt.via, "admin",
        "authorization add goes through the grant"
    );
    let bearer = bearer_for(&h, &h.ci.user.email, "read-protected").await;
    for path in [
        "/apps/example-app/authorizations/org_jwt".to_string(),
        "/apps/example-app/authorizations/applink:org_jwt".to_string(),
        format!("/apps/{}/authorizations/org_jwt", app.id),
    ] {
        let (status, headers, body) = fetch(&h, &path, Some(&bearer)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(body["access_token"], stored.expose_secret());
        assert_eq!(body["developer_name"], "org_jwt");
        assert_eq!(body["alias"], "applink:org_jwt");
        assert_eq!(body["instance_url"], h.base());
        assert_eq!(body["user"], "ci@example.com");
        assert_eq!(body["app"], "example-app");
        assert_eq!(body["token_type"], "Bearer");
    }
    let keys = h.state.secrets.signing_keys().await.unwrap();
    let claims = tokens::verify(&keys, stored.expose_secret(), h.base(), h.now()).unwrap();
    assert_eq!(
        claims.sub, h.ci.user.id,
        "the stored credentials are the grant's token"
    );
    let (status, _, _) = fetch(&h, "/apps/example-app/authorizations/nope", Some(&bearer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fetching_an_authorization_needs_a_valid_bearer_token() {
    let h = Harness::new(shared_ec()).await;
    app_with_authorization(&h).await;
    let path = "/apps/example-app/authorizations/org_jwt";
    let (status, headers, _) = fetch(&h, path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"identity\""
    );
    let (status, headers, body) = fetch(&h, path, Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");
    assert!(
        headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // The assertion itself is no bearer token.
    let (status, _, _) = fetch(&h, path, Some(&h.assertion())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bearer = bearer_for(&h, &h.ci.user.email, "read-protected").await;
    h.clock.advance(3600);
    let (status, _, _) = fetch(&h, path, Some(&bearer)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired bearer token");
}

#[tokio::test]
async fn fetching_with_a_revoked_bearer_token_is_refused() {
    use identity_shared::oauth::RevokedTokens;
    let h = Harness::new(shared_ec()).await;
    app_with_authorization(&h).await;
    let bearer = bearer_for(&h, &h.ci.user.email, "read-protected").await;
    let path = "/apps/example-app/authorizations/org_jwt";
    assert_eq!(fetch(&h, path, Some(&bearer)).await.0, StatusCode::OK);
    let keys = h.state.secrets.signing_keys().await.unwrap();
    let claims = tokens::verify(&keys, &bearer, h.base(), h.now()).unwrap();
    h.state
        .store
        .revoke_jti(&claims.jti, claims.exp)
        .await
        .unwrap();
    let (status, _, body) = fetch(&h, path, Some(&bearer)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn fetching_an_authorization_needs_the_read_protected_scope() {
    let h = Harness::new(shared_ec()).await;
    app_with_authorization(&h).await;
    let bearer = bearer_for(&h, &h.ci.user.email, "api").await;
    let (status, headers, body) = fetch(
        &h,
        "/apps/example-app/authorizations/org_jwt",
        Some(&bearer),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "insufficient_scope");
    assert!(
        headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn fetching_an_authorization_needs_the_owner_or_an_admin_of_the_app() {
    let h = Harness::new(shared_ec()).await;
    app_with_authorization(&h).await;
    let outsider = account(&h.state.store, "outsider@example.com").await;
    h.state
        .store
        .authorize_users(&h.ci.client.client_id, std::slice::from_ref(&outsider))
        .await
        .unwrap();
    let bearer = bearer_for(&h, &outsider.email, "read-protected").await;
    let path = "/apps/example-app/authorizations/org_jwt";
    let (status, _, body) = fetch(&h, path, Some(&bearer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.get("access_token").is_none());
    let app = h
        .state
        .store
        .app_by_name("example-app")
        .await
        .unwrap()
        .unwrap();
    h.state
        .store
        .set_role(&app, &outsider, identity_shared::apps::Role::Collaborator)
        .await
        .unwrap();
    let (status, _, body) = fetch(&h, path, Some(&bearer)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a collaborator cannot turn a read token into the owner's token: {body}"
    );
    assert!(body.get("access_token").is_none());
    h.state
        .store
        .set_role(&app, &outsider, identity_shared::apps::Role::Member)
        .await
        .unwrap();
    assert_eq!(
        fetch(&h, path, Some(&bearer)).await.0,
        StatusCode::FORBIDDEN,
        "nor a member"
    );
    h.state
        .store
        .set_role(&app, &outsider, identity_shared::apps::Role::Admin)
        .await
        .unwrap();
    let (status, _, _) = fetch(&h, path, Some(&bearer)).await;
    assert_eq!(status, StatusCode::OK, "an admin reads it");
    h.state
        .store
        .remove_member(&app, &outsider.id)
        .await
        .unwrap();
    let (status, _, _) = fetch(&h, path, Some(&bearer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "removed at once");
}

#[tokio::test]
async fn authorization_of_a_deauthorized_user_is_withheld() {
    let h = Harness::new(shared_ec()).await;
    let (app, _) = app_with_authorization(&h).await;
    // An admin of the app, with a bearer token of their own, asks for it.
    let admin = account(&h.state.store, "admin@example.com").await;
    h.state
        .store
        .set_role(&app, &admin, identity_shared::apps::Role::Admin)
        .await
        .unwrap();
    h.state
        .store
        .authorize_users(&h.ci.client.client_id, std::slice::from_ref(&admin))
        .await
        .unwrap();
    let bearer = bearer_for(&h, &admin.email, "read-protected").await;
    h.state
        .store
        .deauthorize_users(&h.ci.client.client_id, &[h.ci.user.id.to_string()])
        .await
        .unwrap();
    let (status, _, body) = fetch(
        &h,
        "/apps/example-app/authorizations/org_jwt",
        Some(&bearer),
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no longer pre-authorized")
    );
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn expired_authorization_is_withheld_until_added_again() {
    let h = Harness::new(shared_ec()).await;
    let (app, _) = app_with_authorization(&h).await;
    h.clock.advance(3600);
    let bearer = bearer_for(&h, &h.ci.user.email, "read-protected").await;
    let path = "/apps/example-app/authorizations/applink:org_jwt";
    let (status, _, body) = fetch(&h, path, Some(&bearer)).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let fresh = add_authorization(&h, &app, "org_jwt").await;
    let (status, _, body) = fetch(&h, path, Some(&bearer)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access_token"], fresh.expose_secret());
}

// ---------------------------------------------------------------------------------------
// Flood
// ---------------------------------------------------------------------------------------

/// One `POST /oauth/jwt/token` over a fresh TCP connection from `from` (any 127/8 address
/// is this machine's loopback): the status and the body.
async fn post_over_tcp(
    server: std::net::SocketAddr,
    from: std::net::IpAddr,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        grant::TOKEN_PATH,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Thousands of unauthenticated attempts (bounded: 4 addresses × 500, 8 connections at a
/// time) against the real server on loopback, backed by DynamoDB Local, while a CI job asks
/// for 20 tokens from its own address: every one of its grants succeeds and its history is
/// complete; each flooding address is answered 429 after its limit, and what it sent is
/// kept only as week-long samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_unauthenticated_attempts_leaves_a_ci_client_working_and_its_history_complete() {
    use identity_tests::jwt_suite::{BASE, ci_client, claims, state_on};
    let Some(f) = identity_tests::dynamodb().await else {
        return;
    };
    let state = state_on(&f);
    let key = shared_ec();
    let ci = ci_client(&f.store, key, "ci@example.com").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let service =
        jwt_grant::app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let serving = tokio::spawn(async move { axum::serve(listener, service).await });

    const ADDRESSES: u8 = 4;
    const PER_ADDRESS: usize = 500;
    let limit = state.config.limits.jwt.address as usize;
    let client_id = ci.client.client_id.clone();
    let now = f.store.now();
    let mut flood = Vec::new();
    for a in 0..ADDRESSES {
        for lane in 0..2 {
            let client_id = client_id.clone();
            flood.push(tokio::spawn(async move {
                // Each flooder in its own /24 (the unit an address limit counts), none in the
                // CI job's.
                let from: std::net::IpAddr = format!("127.0.{}.1", 10 + a).parse().unwrap();
                let forger = TestKey::ec();
                let mut statuses = Vec::new();
                for i in 0..PER_ADDRESS / 2 {
                    let assertion = match (i + lane) % 3 {
                        0 => "not-a-jwt".to_string(),
                        1 => forger.sign(&claims("no-such-client", "x@example.com", BASE, now)),
                        _ => forger.sign(&claims(&client_id, "ci@example.com", BASE, now)),
                    };
                    let body = format!(
                        "grant_type={}&assertion={assertion}",
                        grant::JWT_BEARER.replace(':', "%3A")
                    );
                    statuses.push(post_over_tcp(server, from, &body).await.0);
                }
                (a, statuses)
            }));
        }
    }
    let ci_from: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut granted = 0;
    for _ in 0..20 {
        let assertion = key.sign(&claims(&client_id, "ci@example.com", BASE, f.store.now()));
        let body = format!(
            "grant_type={}&assertion={assertion}",
            grant::JWT_BEARER.replace(':', "%3A")
        );
        let (status, body) = post_over_tcp(server, ci_from, &body).await;
        assert_eq!(status, 200, "the CI job's grant during the flood: {body}");
        granted += 1;
    }
    let mut per_address = std::collections::HashMap::<u8, Vec<u16>>::new();
    for t in flood {
        let (a, statuses) = t.await.unwrap();
        per_address.entry(a).or_default().extend(statuses);
    }
    serving.abort();
    let mut refused_in_all = 0;
    for (a, statuses) in &per_address {
        assert_eq!(statuses.len(), PER_ADDRESS);
        let throttled = statuses.iter().filter(|s| **s == 429).count();
        let refused = statuses.iter().filter(|s| **s == 400 || **s == 401).count();
        // A count at the limit refuses the next check at once: of its two connections, only
        // the other one's attempt, already past its check, can still be counted.
        assert!(
            (limit..=limit + 1).contains(&refused),
            "address {a}: refused until its limit, then locked: {refused}"
        );
        assert_eq!(throttled, PER_ADDRESS - refused, "address {a}: then 429");
        refused_in_all += refused;
    }
    assert_eq!(granted, 20);
    let history = f
        .store
        .login_attempts(
            &HistoryFilter {
                client_id: Some(client_id.clone()),
                user: None,
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(history.len(), 20, "the client's history is complete");
    assert!(
        history
            .iter()
            .all(|a| a.outcome == Outcome::Success && a.verified)
    );
    let everything = f
        .store
        .login_attempts(&HistoryFilter::default(), 10_000)
        .await
        .unwrap();
    let samples = everything.iter().filter(|a| !a.verified).count();
    assert_eq!(
        samples, refused_in_all,
        "only attempts before each lock are sampled; throttled ones are counted, not stored"
    );
}

// ---------------------------------------------------------------------------------------
// Named authorizations through the API: POST/GET /apps/{app}/authorizations, DELETE …/{name}
// ---------------------------------------------------------------------------------------

/// An API key for `email`'s account (scopes identity and global).
async fn api_key_for(h: &Harness, email: &str) -> String {
    let account = match h
        .state
        .store
        .account_by_email(&identity_shared::accounts::Email::parse(email).unwrap())
        .await
        .unwrap()
    {
        Some(a) => a,
        None => account(&h.state.store, email).await,
    };
    let (_, token) = h
        .state
        .store
        .create_api_key(
            &account,
            &identity_tests::cli_login_grant(&h.state.store, &account).await,
            None,
            None,
        )
        .await
        .unwrap();
    token.expose_secret().to_string()
}

async fn call(
    h: &Harness,
    method: http::Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(b) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {b}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let response = h
        .router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    (status, identity_tests::body_json(response).await)
}

#[tokio::test]
async fn the_owner_adds_lists_and_removes_a_named_authorization_through_the_api() {
    use http::Method;
    let h = Harness::new(shared_ec()).await;
    h.state
        .store
        .create_app("example-app", &h.ci.user)
        .await
        .unwrap();
    let key = api_key_for(&h, &h.ci.user.email).await;
    let path = "/apps/example-app/authorizations";
    let (status, body) = call(
        &h,
        Method::POST,
        path,
        Some(&key),
        Some(json!({"name": "ci-auth", "assertion": h.assertion()})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["developer_name"], "ci-auth");
    assert_eq!(body["alias"], "applink:ci-auth");
    assert_eq!(body["user"], "ci@example.com");
    assert_eq!(body["status"], "connected");
    assert!(
        body.get("access_token").is_none(),
        "never the token: {body}"
    );
    let attempt = newest_attempt(&h.state.store).await;
    assert_eq!(
        (attempt.via.as_str(), attempt.outcome),
        ("cli", Outcome::Success)
    );

    let (status, body) = call(&h, Method::GET, path, Some(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["authorizations"][0]["developer_name"], "ci-auth");
    assert!(!body.to_string().contains("access_token"));
    let (status, _, body) = fetch(
        &h,
        "/apps/example-app/authorizations/applink:ci-auth",
        Some(&key),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());

    let (status, body) = call(
        &h,
        Method::DELETE,
        &format!("{path}/ci-auth"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["removed"]),
        (StatusCode::OK, &json!("ci-auth"))
    );
    let (status, _) = call(
        &h,
        Method::DELETE,
        &format!("{path}/ci-auth"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = fetch(&h, "/apps/example-app/authorizations/ci-auth", Some(&key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn adding_through_the_api_is_refused_to_others_and_for_bad_input() {
    use http::Method;
    let h = Harness::new(shared_ec()).await;
    let app = h
        .state
        .store
        .create_app("example-app", &h.ci.user)
        .await
        .unwrap();
    let owner = api_key_for(&h, &h.ci.user.email).await;
    let path = "/apps/example-app/authorizations";
    let assertion = h.assertion();
    let body = json!({"name": "ci-auth", "assertion": assertion});

    // No credential; a read-only token; a member (not owner or admin); a stranger.
    let (status, _) = call(&h, Method::POST, path, None, Some(body.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let read_only = bearer_for(&h, &h.ci.user.email, "read-protected").await;
    let (status, b) = call(&h, Method::POST, path, Some(&read_only), Some(body.clone())).await;
    assert_eq!(
        (status, b["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    let member = account(&h.state.store, "member@example.com").await;
    h.state
        .store
        .set_role(&app, &member, identity_shared::apps::Role::Member)
        .await
        .unwrap();
    let member_key = api_key_for(&h, "member@example.com").await;
    let (status, b) = call(
        &h,
        Method::POST,
        path,
        Some(&member_key),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{b}");
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("only the app's owner and its admins")
    );
    let (status, _) = call(&h, Method::GET, path, Some(&member_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let stranger = api_key_for(&h, "stranger@example.com").await;
    let (status, _) = call(&h, Method::POST, path, Some(&stranger), Some(body.clone())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bad bodies and names are refused before the grant runs: the assertion is not spent.
    for bad in [
        json!({"name": "ci-auth"}),
        json!({"name": "ci-auth", "assertion": assertion, "extra": 1}),
        json!({"name": "1bad", "assertion": assertion}),
        json!({"name": "ci-auth", "alias": "x", "assertion": assertion}),
    ] {
        let (status, b) = call(&h, Method::POST, path, Some(&owner), Some(bad.clone())).await;
        assert_eq!(
            (status, b["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{bad}"
        );
    }
    assert!(
        h.state
            .store
            .list_authorizations(&app.id)
            .await
            .unwrap()
            .is_empty()
    );

    // The grant's own refusal, in its own shape; nothing saved.
    let mut c = h.claims();
    c["sub"] = json!("stranger@example.com");
    let (status, b) = call(
        &h,
        Method::POST,
        path,
        Some(&owner),
        Some(json!({"name": "ci-auth", "assertion": h.key.sign(&c)})),
    )
    .await;
    assert_eq!(
        (status, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{b}"
    );
    assert!(
        h.state
            .store
            .list_authorizations(&app.id)
            .await
            .unwrap()
            .is_empty()
    );

    // The untouched assertion still works.
    let (status, b) = call(&h, Method::POST, path, Some(&owner), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
}
