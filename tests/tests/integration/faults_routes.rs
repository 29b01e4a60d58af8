//! Every route of the deployed API (template.yaml's) with the store down (issue 19): each
//! answers in its protocol's shape without a 500 and without internals, and a route that
//! needs the store to judge the caller says "try again" (503), never a verdict such as "no
//! session" or "invalid client" that the store never gave; on the embedded store behind the
//! fault-injecting backend, and on DynamoDB Local behind a proxy that refuses connections.

use std::sync::Arc;

use crate::oauth_common::*;
use axum::body::Body;
use http::{Request, StatusCode, header};
use identity_shared::store::Store;
use identity_tests::faults::Faulty;
use tower::ServiceExt;

/// A request for `method path` carrying what the route reads: the session cookie for pages,
/// client credentials for the token-side endpoints, a bearer token for the other APIs, and a
/// plausible form.
fn request(method: &str, path: &str, cookie: &str, basic: &str, bearer: &str) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .header(header::ORIGIN, "http://127.0.0.1:3000");
    let token_side = path.starts_with("/oauth/")
        && method == "POST"
        && !matches!(
            path,
            "/oauth/authorize" | "/oauth/jwt/token" | "/oauth/authorizations"
        );
    if token_side {
        b = b.header(header::AUTHORIZATION, format!("Basic {basic}"));
    } else if !matches!(method, "GET")
        || path.starts_with("/oauth/")
        || path.starts_with("/apps/")
        || path.starts_with("/teams/")
        || path.starts_with("/enterprises/")
        || path.starts_with("/partner/")
    {
        b = b.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
    }
    let form = match path {
        "/oauth/token" => "grant_type=client_credentials".to_string(),
        "/oauth/revoke" | "/oauth/introspect" => format!("token={bearer}"),
        "/login" => "email=someone%40example.com&password=secret-secret".into(),
        _ => "name=x&email=someone%40example.com&user_code=ABCD-EFGH".into(),
    };
    if method == "GET" || method == "DELETE" {
        b.body(Body::empty()).unwrap()
    } else {
        b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap()
    }
}

#[tokio::test]
async fn every_route_answers_a_store_outage_without_a_500_and_says_try_again_when_it_must() {
    let mut env = env().await;
    let faulty = Arc::new(Faulty::new(env.state.store.backend().clone()));
    env.state.store = Store::new(faulty.clone(), env.state.store.clock().clone());
    env.router = identity_cli::router(env.state.clone());
    every_route_under_an_outage(env, || faulty.down(), || faulty.up(), &["injected"]).await;
}

/// The same on DynamoDB Local behind a loopback proxy that refuses every connection: the
/// store's real client retries within its budget, then each route answers as above.
#[tokio::test]
async fn every_route_answers_a_dynamodb_outage_without_a_500_and_says_try_again_when_it_must() {
    let Some((store, proxy, _)) = identity_tests::proxy::proxied_store().await else {
        return;
    };
    let mut env = env().await;
    env.state.store = Store::new(store.backend().clone(), env.state.store.clock().clone());
    env.router = identity_cli::router(env.state.clone());
    let endpoint = proxy.endpoint.clone();
    every_route_under_an_outage(
        env,
        || proxy.down(),
        || proxy.up(),
        &["dispatch", "DynamoDB", "Transact", &endpoint],
    )
    .await;
}

/// Every route of the template with the store taken down by `down`; `internals` are words
/// no answer may show. Then `up`, and the service resumes.
async fn every_route_under_an_outage(env: Env, down: impl Fn(), up: impl Fn(), internals: &[&str]) {
    // Credentials made while the store is up.
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "outage@example.com").await;
    let issued = client_credentials(&env.router, &c).await;
    assert_eq!(issued.status, StatusCode::OK);
    let bearer = issued.json["access_token"].as_str().unwrap().to_string();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        c.id,
        c.secret.clone().unwrap()
    ));

    let template =
        std::fs::read_to_string(identity_tests::template::workspace().join("template.yaml"))
            .unwrap();
    let routes = identity_tests::template::routes(&template);
    assert!(routes.len() > 30, "{} routes", routes.len());
    down();
    let mut table = Vec::new();
    for route in &routes {
        let path: String = route
            .path
            .split('/')
            .map(|part| if part.starts_with('{') { "x1" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let r = env
            .router
            .clone()
            .oneshot(request(&route.method, &path, &cookie, &basic, &bearer))
            .await
            .unwrap();
        let status = r.status();
        let kind = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&identity_tests::body_bytes(r).await).into_owned();
        let what = format!("{} {}: {status} {kind}", route.method, route.path);
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{what}: {body}");
        for word in internals {
            assert!(!body.contains(word), "{what}: internals ({word}) in {body}");
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                kind.starts_with("text/html") || body.contains("temporarily_unavailable"),
                "{what}: {body}"
            );
        }
        table.push((route.method.clone(), route.path.clone(), status.as_u16()));
    }
    // The caller's credentials are good: only the store can judge them, and it is down.
    for (method, path) in [
        ("GET", "/session"),
        ("POST", "/oauth/token"),
        ("POST", "/oauth/introspect"),
        ("GET", "/oauth/userinfo"),
        ("GET", "/account/authorizations"),
        ("GET", "/oauth/authorizations"),
    ] {
        let (_, _, status) = table
            .iter()
            .find(|(m, p, _)| m == method && p == path)
            .unwrap_or_else(|| panic!("{method} {path} is not in the template"));
        assert_eq!(*status, 503, "{method} {path}");
    }
    for (method, path, status) in &table {
        eprintln!("store down: {method:6} {path:48} {status}");
    }

    up();
    let back = client_credentials(&env.router, &c).await;
    assert_eq!(
        back.status,
        StatusCode::OK,
        "the service resumes with the store"
    );
}
