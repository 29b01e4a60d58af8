//! Helpers shared by the OAuth router tests (`oauth_*.rs`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use http::{HeaderMap, Request, StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::AccountStatus;
use identity_shared::clock::FixedClock;
use identity_shared::http::fields::decode_component as form_decode;
use identity_shared::http::plumbing;
use identity_shared::oauth::{NewClient, OAuthClient, OAuthClients, OAuthSettings, pkce};
use identity_tests::oauth_suite::enc;
use tower::ServiceExt;

pub const REDIRECT: &str = "https://app.example.com/callback";
pub const VERIFIER: &str = "test-verifier-test-verifier-test-verifier-0001";

pub struct Env {
    pub state: AppState,
    pub clock: FixedClock,
    pub router: Router,
    _dir: tempfile::TempDir,
}

/// Every route (`identity serve`'s router) on an embedded store with a pinned clock.
pub async fn env() -> Env {
    let (state, clock, dir) = identity_tests::app_state().await;
    Env {
        router: identity_cli::router(state.clone()),
        state,
        clock,
        _dir: dir,
    }
}

/// The same with explicit OAuth settings.
pub async fn env_with(settings: OAuthSettings) -> Env {
    let (state, clock, dir) = identity_tests::app_state().await;
    let routes = sso_acs::routes()
        .merge(oauth_authorize::routes())
        .merge(oauth_token::routes_with(settings));
    Env {
        router: plumbing::layers(routes).with_state(state.clone()),
        state,
        clock,
        _dir: dir,
    }
}

/// The same with an https issuer (the `oauth2` crate insists on https for revocation).
pub async fn env_https() -> Env {
    let (mut state, clock, dir) = identity_tests::app_state().await;
    let mut config = (*state.config).clone();
    config.base_url = "https://id.example.com".into();
    state.config = Arc::new(config);
    Env {
        router: identity_cli::router(state.clone()),
        state,
        clock,
        _dir: dir,
    }
}

pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub client: OAuthClient,
}

pub async fn register(
    state: &AppState,
    trusted: bool,
    public: bool,
    scopes: &[&str],
) -> TestClient {
    let (client, secret) = state
        .store
        .create_client(NewClient {
            name: if trusted {
                "Trusted <Dashboard>".into()
            } else {
                "Third-party & Co".into()
            },
            redirect_uris: vec![REDIRECT.into(), "http://127.0.0.1:8080/cb".into()],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            trusted,
            public,
        })
        .await
        .unwrap();
    TestClient {
        id: client.client_id.to_string(),
        secret: secret.map(|s| s.expose_secret().to_string()),
        client,
    }
}

pub async fn cookie(state: &AppState, email: &str) -> String {
    identity_tests::signed_in_cookie(state, email, AccountStatus::Active).await
}

pub fn challenge() -> String {
    pkce::challenge_of(VERIFIER)
}

/// The standard authorization request of a client: code, PKCE S256, state `xyz`.
pub fn params(client_id: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &challenge()),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `params` with `key` set to `value` (`None`: removed).
pub fn with(mut p: Vec<(String, String)>, key: &str, value: Option<&str>) -> Vec<(String, String)> {
    p.retain(|(k, _)| k != key);
    if let Some(v) = value {
        p.push((key.into(), v.into()));
    }
    p
}

pub fn form(p: &[(String, String)]) -> String {
    p.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn authorize_path(p: &[(String, String)]) -> String {
    format!("/oauth/authorize?{}", form(p))
}

pub async fn get(router: &Router, path: &str, cookie: Option<&str>) -> Response {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    router
        .clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

pub async fn post(router: &Router, path: &str, body: String, cookie: Option<&str>) -> Response {
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    router
        .clone()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap()
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no Location; status {}", r.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// A URL's base and decoded query parameters.
pub fn split_url(url: &str) -> (String, HashMap<String, String>) {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k).unwrap(), form_decode(v).unwrap())
        })
        .collect();
    (base.to_string(), params)
}

pub async fn text(r: Response) -> String {
    String::from_utf8(identity_tests::body_bytes(r).await).unwrap()
}

/// The value of a hidden input in a page.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(
        html[start..start + end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The code a trusted client gets straight back (or an untrusted one with remembered
/// consent), for the signed-in cookie.
pub async fn code_for(env: &Env, client: &TestClient, cookie: &str) -> String {
    let r = get(
        &env.router,
        &authorize_path(&params(&client.id)),
        Some(cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND, "{}", text(r).await);
    let (base, q) = split_url(&location(&r));
    assert_eq!(base, REDIRECT);
    q["code"].clone()
}

/// How a request to the token endpoint authenticates its client.
pub enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    Public(&'a str),
    Nothing,
}

impl<'a> Auth<'a> {
    pub fn of(c: &'a TestClient) -> Self {
        match &c.secret {
            Some(s) => Auth::Basic(&c.id, s),
            None => Auth::Public(&c.id),
        }
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

/// POSTs a form to a token-side endpoint.
pub async fn call(router: &Router, path: &str, pairs: &[(&str, &str)], auth: Auth<'_>) -> Answer {
    let mut p: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    match auth {
        Auth::Basic(id, secret) => {
            let v = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(id),
                enc(secret)
            ));
            b = b.header(header::AUTHORIZATION, format!("Basic {v}"));
        }
        Auth::Post(id, secret) => {
            p.push(("client_id".into(), id.into()));
            p.push(("client_secret".into(), secret.into()));
        }
        Auth::Public(id) => p.push(("client_id".into(), id.into())),
        Auth::Nothing => {}
    }
    let r = router
        .clone()
        .oneshot(b.body(Body::from(form(&p))).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = identity_tests::body_bytes(r).await;
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    Answer {
        status,
        headers,
        json,
    }
}

pub async fn exchange(router: &Router, client: &TestClient, code: &str) -> Answer {
    call(
        router,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Auth::of(client),
    )
    .await
}

/// RFC 6749 §4.4: a token for the client itself.
pub async fn client_credentials(router: &Router, client: &TestClient) -> Answer {
    call(
        router,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Auth::of(client),
    )
    .await
}

pub async fn refresh(router: &Router, client: &TestClient, token: &str) -> Answer {
    call(
        router,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        Auth::of(client),
    )
    .await
}

pub async fn introspect(router: &Router, client: &TestClient, token: &str) -> serde_json::Value {
    let a = call(
        router,
        "/oauth/introspect",
        &[("token", token)],
        Auth::of(client),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    a.json
}

/// Asserts an RFC 6749 §5.2 error: status, JSON shape, no-store headers.
pub fn assert_oauth_error(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.json);
    assert_eq!(a.json["error"], code, "{}", a.json);
    assert!(a.json["error_description"].is_string(), "{}", a.json);
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(a.headers[header::PRAGMA], "no-cache");
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/json");
}

/// `identity login` as the person does it: the CLI's device request (for its whole scope,
/// `identity global`), the code typed on `/device` by `email`'s browser, Approve, and the
/// CLI's poll; the token answer.
pub async fn cli_login(env: &Env, email: &str) -> Answer {
    use identity_shared::oauth::client::CLI_CLIENT_ID;
    use identity_shared::oauth::device::GRANT_TYPE;
    env.state.store.ensure_cli_client().await.unwrap();
    let started = call(
        &env.router,
        "/oauth/device/authorize",
        &[],
        Auth::Public(CLI_CLIENT_ID),
    )
    .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.json);
    let user_code = started.json["user_code"].as_str().unwrap().to_string();
    let device_code = started.json["device_code"].as_str().unwrap().to_string();
    let cookie = cookie(&env.state, email).await;
    let form_page = text(get(&env.router, "/device", Some(&cookie)).await).await;
    let approval = post(
        &env.router,
        "/device",
        form(&[
            ("csrf".into(), hidden_value(&form_page, "csrf").unwrap()),
            ("user_code".into(), user_code.clone()),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(approval.status(), StatusCode::OK);
    let approval = text(approval).await;
    let done = post(
        &env.router,
        "/device",
        form(&[
            ("csrf".into(), hidden_value(&approval, "csrf").unwrap()),
            ("user_code".into(), user_code),
            ("decision".into(), "allow".into()),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(done.status(), StatusCode::OK);
    let tokens = call(
        &env.router,
        "/oauth/token",
        &[("grant_type", GRANT_TYPE), ("device_code", &device_code)],
        Auth::Public(CLI_CLIENT_ID),
    )
    .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.json);
    tokens
}
