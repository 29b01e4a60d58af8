//! The JWT bearer grant (issue 6): test support (keys, assertions made with jsonwebtoken, a
//! router harness) and the store suite that `tests/jwt_store_suite.rs` runs on both
//! backends (each check an `async fn(&Fixture)`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, Request, StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::{Account, AccountStatus, Accounts, Email};
use identity_shared::authorizations::{
    AuthorizationError, NamedAuthorization, NamedAuthorizations, NewAuthorization, Sealing,
    TokenSeal, default_alias,
};
use identity_shared::clock::FixedClock;
use identity_shared::config::{Config, SecretsSpec, StoreSpec};
use identity_shared::crypto;
use identity_shared::http::oauth::OAuthError;
use identity_shared::jwt_clients::{Certificate, JwtClient, JwtClientError, JwtClients};
use identity_shared::login_history::{
    HistoryFilter, LoginAttempt, LoginHistory, Outcome, RETENTION_SECS, UNVERIFIED_RETENTION_SECS,
};
use identity_shared::oauth::Grants;
use identity_shared::secret::SecretString;
use identity_shared::secrets::Secrets;
use identity_shared::secrets::embedded::EmbeddedSecrets;
use identity_shared::store::Store;
use identity_shared::tokens;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use jwt_grant::grant::{self, Granted, Origin, Via};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::Fixture;

// ---------------------------------------------------------------------------------------
// Keys and assertions
// ---------------------------------------------------------------------------------------

/// A key pair with a self-signed certificate, as CI holds it.
#[derive(Clone)]
pub struct TestKey {
    /// PKCS#8 PEM.
    pub key_pem: String,
    pub cert_pem: String,
    pub alg: Algorithm,
}

pub fn b64(v: &Value) -> String {
    crypto::b64url(v.to_string().as_bytes())
}

impl TestKey {
    /// RSA 2048 (RS256).
    pub fn rsa() -> Self {
        Self::generate(&rcgen::PKCS_RSA_SHA256, Algorithm::RS256)
    }

    /// EC P-256 (ES256).
    pub fn ec() -> Self {
        Self::generate(&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256)
    }

    fn generate(alg: &'static rcgen::SignatureAlgorithm, jwt_alg: Algorithm) -> Self {
        let key = if alg == &rcgen::PKCS_RSA_SHA256 {
            rcgen::KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).expect("RSA key")
        } else {
            rcgen::KeyPair::generate_for(alg).expect("EC key")
        };
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("certificate params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ci.example.com");
        let cert = params.self_signed(&key).expect("self-signed certificate");
        Self {
            key_pem: key.serialize_pem(),
            cert_pem: cert.pem(),
            alg: jwt_alg,
        }
    }

    pub fn certificate(&self, now: i64) -> Certificate {
        Certificate::from_pem(&self.cert_pem, now).expect("certificate parses")
    }

    pub fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.key_pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(self.key_pem.as_bytes()),
        }
        .expect("encoding key")
    }

    /// An assertion made by jsonwebtoken: header `{"typ":"JWT","alg":…}`.
    pub fn sign(&self, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(self.alg), claims, &self.encoding_key()).expect("encode")
    }

    /// An assertion with exactly this header, signed by jsonwebtoken's signer.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding_key(), self.alg)
                .expect("sign");
        format!("{input}.{signature}")
    }

    /// The public key as a JWK (EC keys).
    pub fn public_jwk(&self) -> Value {
        let point = self.certificate(0).public_key_bytes().expect("public key");
        assert_eq!(point.len(), 65, "EC keys only");
        json!({
            "kty": "EC", "crv": "P-256",
            "x": crypto::b64url(&point[1..33]), "y": crypto::b64url(&point[33..]),
        })
    }

    /// The certificate's DER, base64 (as an `x5c` header carries it).
    pub fn x5c(&self) -> String {
        use base64::Engine;
        let der = pem::parse(&self.cert_pem).expect("PEM").into_contents();
        base64::engine::general_purpose::STANDARD.encode(der)
    }
}

/// One RSA key for the whole test binary (generating RSA keys takes a while).
pub fn shared_rsa() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(TestKey::rsa)
}

pub fn shared_ec() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(TestKey::ec)
}

/// Claims a CI job sends: `exp` two minutes ahead, a fresh `jti`.
pub fn claims(iss: &str, sub: &str, aud: &str, now: i64) -> Value {
    json!({
        "iss": iss, "sub": sub, "aud": aud,
        "iat": now, "exp": now + 120,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

pub fn form(assertion: &str) -> HashMap<String, String> {
    HashMap::from([
        ("grant_type".to_string(), grant::JWT_BEARER.to_string()),
        ("assertion".to_string(), assertion.to_string()),
    ])
}

// ---------------------------------------------------------------------------------------
// State and a registered client
// ---------------------------------------------------------------------------------------

pub const BASE: &str = "https://id.example.com";

/// Service state on a fixture's store (either backend), keys in that store.
pub fn state_on(f: &Fixture) -> AppState {
    let config = Config::new(
        BASE.into(),
        StoreSpec::Embedded("unused".into()),
        SecretsSpec::Embedded,
    )
    .expect("config");
    AppState {
        config: Arc::new(config),
        store: f.store.clone(),
        secrets: Arc::new(Secrets::new(
            Arc::new(EmbeddedSecrets::new(f.store.clone())),
            Duration::from_secs(300),
        )),
        mail: Arc::new(identity_shared::outbox::LoggingSender),
        aws: None,
    }
}

/// A JWT client with one certificate, one pre-authorized user and two scopes.
pub struct Ci {
    pub client: JwtClient,
    pub user: Account,
}

impl Ci {
    /// A good assertion for the client and its user, signed with `key`, issued at `now`.
    pub fn assertion(&self, key: &TestKey, now: i64) -> String {
        key.sign(&claims(&self.client.client_id, &self.user.email, BASE, now))
    }
}

pub async fn account(store: &Store, email: &str) -> Account {
    store
        .create_account(&Email::parse(email).unwrap(), None, AccountStatus::Active)
        .await
        .expect("account")
}

pub async fn ci_client(store: &Store, key: &TestKey, email: &str) -> Ci {
    let user = account(store, email).await;
    let client = store
        .create_jwt_client(
            "CI",
            vec![key.certificate(store.now())],
            std::slice::from_ref(&user),
            &["api".to_string(), "read-protected".to_string()],
        )
        .await
        .expect("jwt client");
    Ci { client, user }
}

/// Runs the grant in-process, as the route does, from 192.0.2.1.
pub async fn run_grant(state: &AppState, assertion: &str) -> Result<Granted, OAuthError> {
    grant::exchange(
        state,
        Ok(form(assertion)),
        &Origin {
            source_ip: Some("192.0.2.1".parse().unwrap()),
            via: Via::TokenEndpoint,
            app_id: None,
        },
    )
    .await
}

pub async fn newest_attempt(store: &Store) -> LoginAttempt {
    store
        .login_attempts(&HistoryFilter::default(), 1)
        .await
        .expect("history")
        .into_iter()
        .next()
        .expect("an attempt was recorded")
}

// ---------------------------------------------------------------------------------------
// The router harness (embedded store, pinned clock)
// ---------------------------------------------------------------------------------------

pub struct Harness {
    pub state: AppState,
    pub clock: FixedClock,
    pub ci: Ci,
    pub key: TestKey,
    pub router: axum::Router,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// `jwt-grant`'s service on an embedded store; a client registered with `key`'s
    /// certificate, pre-authorizing ci@example.com.
    pub async fn new(key: &TestKey) -> Self {
        let (state, clock, dir) = crate::app_state().await;
        let ci = ci_client(&state.store, key, "ci@example.com").await;
        Self {
            router: jwt_grant::app(state.clone()),
            state,
            clock,
            ci,
            key: key.clone(),
            _dir: dir,
        }
    }

    pub fn now(&self) -> i64 {
        self.state.now()
    }

    pub fn base(&self) -> &str {
        &self.state.config.base_url
    }

    /// Good claims for the registered client and user.
    pub fn claims(&self) -> Value {
        claims(
            &self.ci.client.client_id,
            &self.ci.user.email,
            self.base(),
            self.now(),
        )
    }

    pub fn assertion(&self) -> String {
        self.key.sign(&self.claims())
    }

    pub async fn post(&self, content_type: &str, body: String) -> (StatusCode, HeaderMap, Value) {
        let response = self
            .router
            .clone()
            .oneshot(
                Request::post(grant::TOKEN_PATH)
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, crate::body_json(response).await)
    }

    /// Posts `grant_type` + `assertion` (form-encoded).
    pub async fn token(&self, assertion: &str) -> (StatusCode, HeaderMap, Value) {
        let body = format!(
            "grant_type={}&assertion={}",
            grant::JWT_BEARER.replace(':', "%3A"),
            assertion
        );
        self.post("application/x-www-form-urlencoded", body).await
    }

    /// Posts the assertion, which must be refused with `code` and a description containing
    /// `needle`, with no-store headers; the newest login-history attempt is that refusal
    /// with the same reason. Returns the description.
    pub async fn refused(&self, assertion: &str, code: &str, needle: &str) -> String {
        let (status, headers, body) = self.token(assertion).await;
        let expected = if code == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, expected, "{body}");
        assert_eq!(body["error"], code, "{body}");
        let description = body["error_description"].as_str().unwrap().to_string();
        assert!(
            description.contains(needle),
            "{description:?} should mention {needle:?}"
        );
        assert!(body.get("access_token").is_none());
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::PRAGMA], "no-cache");
        let attempt = newest_attempt(&self.state.store).await;
        assert_eq!(attempt.outcome, Outcome::Failure);
        assert_eq!(attempt.error.as_deref(), Some(code));
        assert_eq!(attempt.reason, description);
        assert_eq!(attempt.via, "token_endpoint");
        description
    }

    /// Posts the assertion, which must be granted; the token response.
    pub async fn granted(&self, assertion: &str) -> Value {
        let (status, headers, body) = self.token(assertion).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let attempt = newest_attempt(&self.state.store).await;
        assert_eq!(attempt.outcome, Outcome::Success);
        body
    }
}

// ---------------------------------------------------------------------------------------
// The store suite (both backends)
// ---------------------------------------------------------------------------------------

pub async fn jwt_client_round_trip(f: &Fixture) {
    let key = shared_ec();
    let ci = ci_client(&f.store, key, "rt@example.com").await;
    let read = f
        .store
        .jwt_client(&ci.client.client_id)
        .await
        .unwrap()
        .expect("client");
    assert_eq!(read, ci.client);
    assert!(read.is_pre_authorized(&ci.user.id));
    assert_eq!(read.scopes, ["api", "read-protected"]);
    assert_eq!(read.certificates[0].x5t_s256, key.certificate(0).x5t_s256);
    let other = f.reopen().await;
    assert_eq!(
        other.jwt_client(&ci.client.client_id).await.unwrap(),
        Some(read.clone()),
        "another process sees it"
    );
    assert!(
        f.store
            .list_jwt_clients()
            .await
            .unwrap()
            .iter()
            .any(|c| c.client_id == read.client_id)
    );
    assert!(f.store.jwt_client("jwt_nope").await.unwrap().is_none());
    assert!(matches!(
        f.store.create_jwt_client("x", vec![], &[], &[]).await,
        Err(JwtClientError::NoCertificate)
    ));
    let cert = key.certificate(0);
    assert!(matches!(
        f.store
            .create_jwt_client("x", vec![cert.clone(), cert.clone()], &[], &[])
            .await,
        Err(JwtClientError::DuplicateCertificate)
    ));
    assert!(matches!(
        f.store
            .create_jwt_client("x", vec![cert], &[], &["a b".to_string()])
            .await,
        Err(JwtClientError::InvalidScope(_))
    ));
}

/// Two certificates: both keys are accepted; after one is removed its key is refused.
pub async fn certificate_rotation_keeps_both_keys_until_one_is_removed(f: &Fixture) {
    let state = state_on(f);
    let old = shared_rsa();
    let new = TestKey::ec();
    let ci = ci_client(&f.store, old, "rotate@example.com").await;
    let id = &ci.client.client_id;
    let rotated = f
        .store
        .add_certificate(id, new.certificate(f.store.now()))
        .await
        .unwrap();
    assert_eq!(rotated.certificates.len(), 2);
    assert!(matches!(
        f.store
            .add_certificate(id, new.certificate(f.store.now()))
            .await,
        Err(JwtClientError::DuplicateCertificate)
    ));
    let now = f.store.now();
    for key in [old, &new] {
        let a = key.sign(&claims(id, &ci.user.email, BASE, now));
        assert!(run_grant(&state, &a).await.is_ok(), "{:?}", key.alg);
    }
    let after = f
        .store
        .remove_certificate(id, &old.certificate(0).x5t)
        .await
        .unwrap();
    assert_eq!(after.certificates.len(), 1);
    let refused = run_grant(&state, &old.sign(&claims(id, &ci.user.email, BASE, now)))
        .await
        .unwrap_err();
    assert_eq!(refused.code.as_str(), "invalid_grant");
    assert!(
        refused
            .description
            .contains("no certificate of this client has a key for"),
        "the only certificate left is EC: {}",
        refused.description
    );
    assert!(
        run_grant(&state, &new.sign(&claims(id, &ci.user.email, BASE, now)))
            .await
            .is_ok()
    );
    assert!(matches!(
        f.store.remove_certificate(id, "nope").await,
        Err(JwtClientError::NoSuchCertificate(_))
    ));
    assert!(matches!(
        f.store
            .add_certificate("jwt_nope", old.certificate(0))
            .await,
        Err(JwtClientError::NotFound)
    ));
}

/// Six operators pre-authorize six users at once: every change lands.
pub async fn concurrent_changes_to_a_client_all_land(f: &Fixture) {
    let ci = ci_client(&f.store, shared_ec(), "owner@example.com").await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = f.store.clone();
        let id = ci.client.client_id.clone();
        tasks.push(tokio::spawn(async move {
            let user = account(&store, &format!("u{i}@example.com")).await;
            store.authorize_users(&id, &[user]).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("authorized");
    }
    let client = f
        .store
        .jwt_client(&ci.client.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.users.len(), 7, "{:?}", client.users);
    let gone = client.users[1].account_id.clone();
    let client = f
        .store
        .deauthorize_users(&ci.client.client_id, std::slice::from_ref(&gone))
        .await
        .unwrap();
    assert!(!client.is_pre_authorized(&gone));
    assert_eq!(client.users.len(), 6);
}

pub async fn jwt_grant_issues_a_token_and_records_it(f: &Fixture) {
    let state = state_on(f);
    let key = shared_ec();
    let ci = ci_client(&f.store, key, "grant@example.com").await;
    let now = f.store.now();
    let granted = run_grant(
        &state,
        &key.sign(&claims(
            &ci.client.client_id,
            "Grant@Example.com",
            BASE,
            now,
        )),
    )
    .await
    .expect("granted");
    assert_eq!(granted.scope, "api read-protected");
    assert_eq!(granted.instance_url, BASE);
    let keys = state.secrets.signing_keys().await.unwrap();
    let access = tokens::verify(&keys, granted.access_token.expose_secret(), BASE, now).unwrap();
    assert_eq!(access.sub, ci.user.id);
    assert_eq!(access.client_id, ci.client.client_id);
    let grant = f
        .store
        .current_grant(&ci.user.id, &ci.client.client_id)
        .await
        .unwrap()
        .expect("the grant made a grant for the user and client");
    assert_eq!(
        access.gid.as_deref(),
        Some(grant.gid.as_str()),
        "the token belongs to it, so revoking it reaches the token"
    );
    let attempt = newest_attempt(&f.store).await;
    assert_eq!(attempt.outcome, Outcome::Success);
    assert_eq!(
        attempt.client_id.as_deref(),
        Some(ci.client.client_id.as_str())
    );
    assert!(attempt.client_known);
    assert_eq!(attempt.account_id.as_deref(), Some(ci.user.id.as_str()));
    assert_eq!(attempt.source_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(attempt.via, "token_endpoint");
    assert_eq!(attempt.at, now);
}

/// One assertion with a `jti`, sent by 20 racers at once (two store handles): exactly one
/// gets a token.
pub async fn jti_is_accepted_once_by_20_racers(f: &Fixture) {
    let state = state_on(f);
    let mut other = state.clone();
    other.store = f.reopen().await;
    let key = shared_ec();
    let ci = ci_client(&f.store, key, "race@example.com").await;
    let assertion = key.sign(&claims(
        &ci.client.client_id,
        &ci.user.email,
        BASE,
        f.store.now(),
    ));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 {
            state.clone()
        } else {
            other.clone()
        };
        let a = assertion.clone();
        tasks.push(tokio::spawn(async move { run_grant(&s, &a).await }));
    }
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => granted += 1,
            Err(e) => assert!(e.description.contains("jti was already used"), "{e:?}"),
        }
    }
    assert_eq!(granted, 1);
}

pub async fn deauthorized_user_is_refused_at_once(f: &Fixture) {
    let state = state_on(f);
    let key = shared_ec();
    let ci = ci_client(&f.store, key, "leaver@example.com").await;
    let now = f.store.now();
    let sign = || ci.assertion(key, now);
    assert!(run_grant(&state, &sign()).await.is_ok());
    f.store
        .deauthorize_users(&ci.client.client_id, &[ci.user.id.to_string()])
        .await
        .unwrap();
    let e = run_grant(&state, &sign()).await.unwrap_err();
    assert_eq!(e.description, "user is not pre-authorized for this client");
    let attempt = newest_attempt(&f.store).await;
    assert_eq!(attempt.reason, e.description);
    assert_eq!(attempt.account_id.as_deref(), Some(ci.user.id.as_str()));
}

fn attempt(at: i64, client: Option<(&str, bool)>, subject: &str, outcome: Outcome) -> LoginAttempt {
    LoginAttempt {
        at,
        client_id: client.map(|(c, _)| c.to_string()),
        client_known: client.is_some_and(|(_, known)| known),
        // As the grant records them: a known client's attempts here verified.
        verified: client.is_some_and(|(_, known)| known),
        subject: Some(subject.to_string()),
        account_id: None,
        outcome,
        error: None,
        reason: format!("{subject} at {at}"),
        source_ip: None,
        via: "token_endpoint".into(),
        scope: None,
    }
}

pub async fn login_history_is_newest_first_filtered_and_kept_90_days(f: &Fixture) {
    let t0 = f.store.now();
    let day = 86_400;
    let records = [
        attempt(
            t0 - 3 * day,
            Some(("jwt_a", true)),
            "x@example.com",
            Outcome::Success,
        ),
        attempt(
            t0 - 2 * day,
            Some(("jwt_b", true)),
            "y@example.com",
            Outcome::Failure,
        ),
        attempt(
            t0 - day,
            Some(("jwt_a", true)),
            "Y@example.com",
            Outcome::Failure,
        ),
        attempt(
            t0 - day,
            Some(("jwt_unknown", false)),
            "x@example.com",
            Outcome::Failure,
        ),
        attempt(t0, Some(("jwt_a", true)), "x@example.com", Outcome::Success),
        attempt(t0, None, "not an email", Outcome::Failure),
    ];
    for r in &records {
        f.store.record_attempt(r).await.unwrap();
    }
    let reasons = |list: Vec<LoginAttempt>| list.into_iter().map(|a| a.reason).collect::<Vec<_>>();
    let all = f
        .store
        .login_attempts(&HistoryFilter::default(), 100)
        .await
        .unwrap();
    let expected: Vec<String> = records.iter().rev().map(|r| r.reason.clone()).collect();
    assert_eq!(reasons(all), expected, "newest first");
    let a = HistoryFilter {
        client_id: Some("jwt_a".into()),
        user: None,
    };
    assert_eq!(
        reasons(f.store.login_attempts(&a, 100).await.unwrap()),
        [
            records[4].reason.clone(),
            records[2].reason.clone(),
            records[0].reason.clone()
        ]
    );
    let unknown = HistoryFilter {
        client_id: Some("jwt_unknown".into()),
        user: None,
    };
    assert!(
        f.store
            .login_attempts(&unknown, 100)
            .await
            .unwrap()
            .is_empty(),
        "an iss naming no client gets no client view"
    );
    let y = HistoryFilter {
        client_id: None,
        user: Some(Email::parse("y@example.com").unwrap()),
    };
    assert_eq!(
        reasons(f.store.login_attempts(&y, 100).await.unwrap()),
        [records[2].reason.clone(), records[1].reason.clone()],
        "emails compare case-insensitively"
    );
    let a_and_x = HistoryFilter {
        client_id: Some("jwt_a".into()),
        user: Some(Email::parse("x@example.com").unwrap()),
    };
    assert_eq!(
        reasons(f.store.login_attempts(&a_and_x, 100).await.unwrap()),
        [records[4].reason.clone(), records[0].reason.clone()]
    );
    assert_eq!(
        f.store
            .login_attempts(&HistoryFilter::default(), 2)
            .await
            .unwrap()
            .len(),
        2
    );
    // Retention: unverified attempts (no registered client) are samples kept a week; the
    // oldest verified attempt goes next, then all of them.
    f.clock.set(t0 + UNVERIFIED_RETENTION_SECS);
    let left = f
        .store
        .login_attempts(&HistoryFilter::default(), 100)
        .await
        .unwrap();
    assert_eq!(
        reasons(left),
        [
            records[4].reason.clone(),
            records[2].reason.clone(),
            records[1].reason.clone(),
            records[0].reason.clone()
        ]
    );
    f.clock.set(t0 - 3 * day + RETENTION_SECS);
    let left = f
        .store
        .login_attempts(&HistoryFilter::default(), 100)
        .await
        .unwrap();
    assert_eq!(left.len(), 3);
    f.clock.set(t0 + RETENTION_SECS);
    assert!(
        f.store
            .login_attempts(&HistoryFilter::default(), 100)
            .await
            .unwrap()
            .is_empty()
    );
    f.clock.set(t0);
}

pub async fn named_authorizations_by_name_and_alias(f: &Fixture) {
    let state = state_on(f);
    let keys = state.secrets.signing_keys().await.unwrap();
    let seal = TokenSeal::from_signing_keys(&keys).unwrap();
    let now = f.store.now();
    let token = SecretString::new("token-one");
    let make = |name: &'static str, alias: String, token: &SecretString| {
        NamedAuthorization::new(
            &NewAuthorization {
                developer_name: name,
                alias: &alias,
                app_id: "app-1",
                client_id: "jwt_c",
                account_id: "acct-1",
                email: "ci@example.com",
                scope: "api",
                instance_url: BASE,
                access_token: token,
                issued_at: now,
                expires_at: now + 3600,
            },
            &seal,
            now,
        )
    };
    let first = f
        .store
        .save_authorization(&make("org_jwt", default_alias("org_jwt"), &token))
        .await
        .unwrap();
    for key in ["org_jwt", "applink:org_jwt"] {
        let got = f
            .store
            .authorization("app-1", key)
            .await
            .unwrap()
            .expect(key);
        assert_eq!(got.developer_name, "org_jwt");
        assert_eq!(
            got.access_token(&seal).unwrap().expose_secret(),
            "token-one"
        );
    }
    assert!(
        f.store
            .authorization("app-2", "org_jwt")
            .await
            .unwrap()
            .is_none(),
        "per app"
    );
    assert!(
        f.store
            .authorization("app-1", "nope")
            .await
            .unwrap()
            .is_none()
    );

    // Saving again under the same name refreshes the credentials.
    f.clock.advance(10);
    let refreshed = f
        .store
        .save_authorization(&make(
            "org_jwt",
            "ci:main".into(),
            &SecretString::new("token-two"),
        ))
        .await
        .unwrap();
    assert_eq!(refreshed.created_at, first.created_at);
    assert_eq!(refreshed.version, first.version + 1);
    let got = f
        .store
        .authorization("app-1", "ci:main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.access_token(&seal).unwrap().expose_secret(),
        "token-two"
    );
    assert!(
        f.store
            .authorization("app-1", "applink:org_jwt")
            .await
            .unwrap()
            .is_none(),
        "the old alias is free again"
    );
    assert!(matches!(
        f.store
            .save_authorization(&make("other", "ci:main".into(), &token))
            .await,
        Err(AuthorizationError::AliasTaken(_))
    ));
    assert!(matches!(
        f.store
            .save_authorization(&make("x", "applink:x".into(), &token))
            .await,
        Err(AuthorizationError::InvalidName)
    ));
    f.store
        .save_authorization(&make("dc_jwt", default_alias("dc_jwt"), &token))
        .await
        .unwrap();
    let names: Vec<String> = f
        .store
        .list_authorizations("app-1")
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.developer_name)
        .collect();
    assert_eq!(names, ["dc_jwt", "org_jwt"]);
    assert!(
        f.store
            .remove_authorization("app-1", "org_jwt")
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .remove_authorization("app-1", "org_jwt")
            .await
            .unwrap()
    );
    assert!(
        f.store
            .authorization("app-1", "ci:main")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.store
            .authorization("app-1", "org_jwt")
            .await
            .unwrap()
            .is_none()
    );
}

/// Whether the token is still active, as introspection and the named-authorization fetch
/// judge it.
async fn active(state: &AppState, token: &SecretString) -> bool {
    let keys = state.secrets.signing_keys().await.unwrap();
    match tokens::verify(&keys, token.expose_secret(), BASE, state.now()) {
        Ok(claims) => identity_shared::oauth::access_token_active(&state.store, &claims)
            .await
            .unwrap(),
        Err(_) => false,
    }
}

pub async fn deauthorizing_the_user_or_removing_a_certificate_makes_jwt_grant_tokens_inactive(
    f: &Fixture,
) {
    let state = state_on(f);
    let key = shared_ec();
    let ci = ci_client(&f.store, key, "revoked@example.com").await;
    let sign = || ci.assertion(key, f.store.now());
    let first = run_grant(&state, &sign()).await.unwrap().access_token;
    assert!(active(&state, &first).await);
    f.store
        .deauthorize_users(&ci.client.client_id, &[ci.user.id.to_string()])
        .await
        .unwrap();
    assert!(
        !active(&state, &first).await,
        "{}: deauthorizing the user revokes its tokens at once",
        f.backend
    );

    f.store
        .authorize_users(&ci.client.client_id, std::slice::from_ref(&ci.user))
        .await
        .unwrap();
    let second = run_grant(&state, &sign()).await.unwrap().access_token;
    assert!(
        active(&state, &second).await,
        "a new grant after re-authorizing"
    );
    assert!(!active(&state, &first).await, "the old token stays dead");
    let other = TestKey::ec();
    f.store
        .add_certificate(&ci.client.client_id, other.certificate(f.store.now()))
        .await
        .unwrap();
    f.store
        .remove_certificate(&ci.client.client_id, &key.certificate(0).x5t)
        .await
        .unwrap();
    assert!(
        !active(&state, &second).await,
        "{}: removing a certificate revokes the client's tokens",
        f.backend
    );
}

pub async fn a_blocked_user_gets_no_jwt_grant_token_and_its_tokens_go_inactive(f: &Fixture) {
    use identity_shared::accounts::Offboarding;
    let state = state_on(f);
    let key = shared_ec();
    let ci = ci_client(&f.store, key, "blocked@example.com").await;
    let sign = || ci.assertion(key, f.store.now());
    let token = run_grant(&state, &sign()).await.unwrap().access_token;
    f.store.block_account(&ci.user.id).await.unwrap();
    assert!(!active(&state, &token).await, "{}", f.backend);
    let e = run_grant(&state, &sign()).await.unwrap_err();
    assert_eq!(e.description, "the user's account is blocked");
}

pub async fn unverified_attempts_are_week_long_samples_outside_the_client_and_user_views(
    f: &Fixture,
) {
    let state = state_on(f);
    let key = shared_ec();
    let ci = ci_client(&f.store, key, "sampled@example.com").await;
    let now = f.store.now();
    // Signed by a key the client never registered: anyone can send this.
    let forged = TestKey::ec().sign(&claims(&ci.client.client_id, &ci.user.email, BASE, now));
    run_grant(&state, &forged).await.unwrap_err();
    let sample = newest_attempt(&f.store).await;
    assert!(sample.client_known && !sample.verified);
    let by_client = HistoryFilter {
        client_id: Some(ci.client.client_id.clone()),
        user: None,
    };
    let by_user = HistoryFilter {
        client_id: None,
        user: Some(Email::parse(&ci.user.email).unwrap()),
    };
    assert!(
        f.store
            .login_attempts(&by_client, 10)
            .await
            .unwrap()
            .is_empty(),
        "{}: outsiders cannot add to the client's view",
        f.backend
    );
    assert!(
        f.store
            .login_attempts(&by_user, 10)
            .await
            .unwrap()
            .is_empty()
    );
    run_grant(&state, &ci.assertion(key, now)).await.unwrap();
    assert_eq!(
        f.store.login_attempts(&by_client, 10).await.unwrap().len(),
        1
    );
    assert_eq!(f.store.login_attempts(&by_user, 10).await.unwrap().len(), 1);
    f.clock.set(now + UNVERIFIED_RETENTION_SECS);
    let left = f
        .store
        .login_attempts(&HistoryFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "the sample is gone after a week");
    assert!(left[0].verified);
    f.clock.set(now);
}

pub async fn jwt_grant_failures_lock_their_address_prefix_and_other_prefixes_go_on(f: &Fixture) {
    let mut state = state_on(f);
    let mut config = (*state.config).clone();
    config.limits.jwt.address = 3;
    state.config = Arc::new(config);
    let key = shared_ec();
    let ci = ci_client(&f.store, key, "throttled@example.com").await;
    let from = |ip: &str| Origin {
        source_ip: Some(ip.parse().unwrap()),
        via: Via::TokenEndpoint,
        app_id: None,
    };
    let good = || {
        key.sign(&claims(
            &ci.client.client_id,
            &ci.user.email,
            BASE,
            f.store.now(),
        ))
    };
    for _ in 0..2 {
        let e = grant::exchange(&state, Ok(form("garbage")), &from("198.51.100.1"))
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_grant", "a malformed assertion");
    }
    let e = grant::exchange(&state, Ok(form("garbage")), &from("198.51.100.1"))
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "invalid_grant", "the failure that locks");
    let e = grant::exchange(&state, Ok(form(&good())), &from("198.51.100.1"))
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "too_many_requests", "{}", f.backend);
    assert_eq!(e.retry_after, Some(900));
    let e = grant::exchange(&state, Ok(form(&good())), &from("198.51.100.77"))
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "too_many_requests", "nor one of its /24");
    assert!(
        grant::exchange(&state, Ok(form(&good())), &from("203.0.113.2"))
            .await
            .is_ok(),
        "an address of another /24 is not locked"
    );
    // The admin command is never throttled.
    let admin = Origin {
        source_ip: None,
        via: Via::Admin,
        app_id: None,
    };
    assert!(
        grant::exchange(&state, Ok(form(&good())), &admin)
            .await
            .is_ok()
    );
    f.clock.advance(900);
    assert!(
        grant::exchange(&state, Ok(form(&good())), &from("198.51.100.1"))
            .await
            .is_ok()
    );
}
