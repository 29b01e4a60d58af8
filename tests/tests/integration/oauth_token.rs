//! `POST /oauth/token`, `/oauth/revoke`, `/oauth/introspect`, the RFC 8414 metadata and the
//! JWKS through `identity serve`'s router: each rule of issue 3, named after it.

use crate::oauth_common::*;
use http::{StatusCode, header};
use identity_shared::crypto;
use identity_shared::oauth::{Grants, OAuthSettings};
use identity_shared::secrets::SecretKind;
use identity_shared::secrets::embedded::EmbeddedSecrets;
use identity_shared::tokens;
use serde_json::json;

fn claims_of(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&crypto::b64url_decode(payload).unwrap()).unwrap()
}

/// A client, a signed-in person and tokens from a code exchange.
async fn tokens_for(env: &Env, trusted_scopes: &[&str]) -> (TestClient, Answer) {
    let c = register(&env.state, true, false, trusted_scopes).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let code = code_for(env, &c, &cookie).await;
    let a = exchange(&env.router, &c, &code).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    (c, a)
}

#[tokio::test]
async fn code_exchange_issues_an_rfc_9068_access_token_and_a_refresh_token() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity", "read"]).await;
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(a.headers[header::PRAGMA], "no-cache");
    assert_eq!(a.json["token_type"], "Bearer");
    assert_eq!(a.json["expires_in"], 3600);
    assert_eq!(a.json["scope"], "identity read");
    let refresh = a.json["refresh_token"].as_str().unwrap();
    assert_eq!(refresh.len(), 43, "opaque, 256 random bits");
    let access = a.json["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let keys = env.state.secrets.signing_keys().await.unwrap();
    assert_eq!(header.kid.as_deref(), Some(keys.current.kid.as_str()));
    let claims = claims_of(access);
    for claim in [
        "iss",
        "sub",
        "aud",
        "client_id",
        "scope",
        "jti",
        "iat",
        "exp",
        "gid",
    ] {
        assert!(!claims[claim].is_null(), "{claim} in {claims}");
    }
    assert_eq!(claims["iss"], "http://127.0.0.1:3000");
    assert_eq!(claims["client_id"], c.id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let verified = tokens::verify(&keys, access, "http://127.0.0.1:3000", env.state.now()).unwrap();
    assert_eq!(verified.scope, "identity read");
    // Only hashes are stored: the refresh token appears nowhere in the OAuth table.
    let items = env
        .state
        .store
        .backend()
        .scan(identity_shared::store::Table::OAuth, env.state.now())
        .await
        .unwrap();
    assert!(
        items
            .iter()
            .all(|i| !i.body.contains(refresh) && !i.pk.contains(refresh))
    );
}

#[tokio::test]
async fn token_errors_are_rfc_6749_json_with_their_status_and_no_store() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let secret = c.secret.clone().unwrap();
    let a = call(
        &env.router,
        "/oauth/token",
        &[("grant_type", "password")],
        Auth::of(&c),
    )
    .await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    let a = call(&env.router, "/oauth/token", &[], Auth::of(&c)).await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
    let a = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Auth::Post(&c.id, &secret),
    )
    .await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
    let a = call(
        &env.router,
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("scope", "global")],
        Auth::of(&c),
    )
    .await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_scope");
    assert_eq!(
        a.json.as_object().unwrap().len(),
        2,
        "exactly error and error_description: {}",
        a.json
    );
}

#[tokio::test]
async fn invalid_client_is_401_with_www_authenticate() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let secret = c.secret.clone().unwrap();
    let cc = [("grant_type", "client_credentials")];
    for auth in [
        Auth::Basic(&c.id, "wrong"),
        Auth::Post(&c.id, "wrong"),
        Auth::Basic("no-such-client", &secret),
        Auth::Public(&c.id),
        Auth::Nothing,
    ] {
        let a = call(&env.router, "/oauth/token", &cc, auth).await;
        assert_oauth_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(a.headers.contains_key(header::WWW_AUTHENTICATE));
    }
    assert_eq!(
        call(
            &env.router,
            "/oauth/token",
            &cc,
            Auth::Basic(&c.id, &secret)
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&env.router, "/oauth/token", &cc, Auth::Post(&c.id, &secret))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn client_authenticating_with_basic_and_post_at_once_is_refused() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let secret = c.secret.clone().unwrap();
    let a = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ],
        Auth::Basic(&c.id, &secret),
    )
    .await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn duplicate_parameters_are_refused() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let a = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
        Auth::of(&c),
    )
    .await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        a.json["error_description"]
            .as_str()
            .unwrap()
            .contains("repeated")
    );
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_invalid_request() {
    use axum::body::Body;
    use tower::ServiceExt;
    let env = env().await;
    let r = env
        .router
        .clone()
        .oneshot(
            http::Request::post("/oauth/token")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        identity_tests::body_json(r).await["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn pkce_wrong_verifier_fails_and_the_code_is_spent() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let code = code_for(&env, &c, &cookie).await;
    let wrong = "x".repeat(43);
    let a = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &wrong),
        ],
        Auth::of(&c),
    )
    .await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
    let a = exchange(&env.router, &c, &code).await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn pkce_missing_verifier_is_invalid_request() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let code = code_for(&env, &c, &cookie).await;
    let a = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        Auth::of(&c),
    )
    .await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn code_is_bound_to_its_client_and_redirect_uri() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let other = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let code = code_for(&env, &c, &cookie).await;
    let a = exchange(&env.router, &other, &code).await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");

    let code = code_for(&env, &c, &cookie).await;
    let a = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8080/cb"),
            ("code_verifier", VERIFIER),
        ],
        Auth::of(&c),
    )
    .await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn code_expires_after_60_seconds() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let code = code_for(&env, &c, &cookie).await;
    env.clock.advance(60);
    assert_oauth_error(
        &exchange(&env.router, &c, &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    let code = code_for(&env, &c, &cookie).await;
    env.clock.advance(59);
    assert_eq!(
        exchange(&env.router, &c, &code).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn code_reuse_fails_and_revokes_the_tokens_of_its_first_use() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let code = code_for(&env, &c, &cookie).await;
    let first = exchange(&env.router, &c, &code).await;
    assert_eq!(first.status, StatusCode::OK);
    let access = first.json["access_token"].as_str().unwrap();
    assert_eq!(introspect(&env.router, &c, access).await["active"], true);
    env.clock.advance(2);
    let second = exchange(&env.router, &c, &code).await;
    assert_oauth_error(&second, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        introspect(&env.router, &c, access).await,
        serde_json::json!({"active": false})
    );
    let refresh = first.json["refresh_token"].as_str().unwrap();
    assert_oauth_error(
        &crate::oauth_common::refresh(&env.router, &c, refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_dies() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity"]).await;
    let r1 = a.json["refresh_token"].as_str().unwrap().to_string();
    env.clock.advance(30);
    let b = crate::oauth_common::refresh(&env.router, &c, &r1).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.json);
    assert_eq!(b.headers[header::CACHE_CONTROL], "no-store");
    let r2 = b.json["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(
        claims_of(b.json["access_token"].as_str().unwrap())["gid"],
        claims_of(a.json["access_token"].as_str().unwrap())["gid"]
    );
    // A retry of r1 within the grace period: refused, nothing revoked, no second family.
    let retry = crate::oauth_common::refresh(&env.router, &c, &r1).await;
    assert_oauth_error(&retry, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(retry.json.get("refresh_token").is_none());
    let d = crate::oauth_common::refresh(&env.router, &c, &r2).await;
    assert_eq!(
        d.status,
        StatusCode::OK,
        "the successor still works: {}",
        d.json
    );
}

#[tokio::test]
async fn refresh_reuse_revokes_the_grant() {
    let env = env_with(OAuthSettings {
        refresh_grace_secs: 10,
    })
    .await;
    let (c, a) = tokens_for(&env, &["identity"]).await;
    let r1 = a.json["refresh_token"].as_str().unwrap().to_string();
    let b = crate::oauth_common::refresh(&env.router, &c, &r1).await;
    let r2 = b.json["refresh_token"].as_str().unwrap().to_string();
    let access2 = b.json["access_token"].as_str().unwrap().to_string();
    env.clock.advance(10);
    let reuse = crate::oauth_common::refresh(&env.router, &c, &r1).await;
    assert_oauth_error(&reuse, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        reuse.json["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    assert_oauth_error(
        &crate::oauth_common::refresh(&env.router, &c, &r2).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_eq!(introspect(&env.router, &c, &access2).await["active"], false);
    assert_eq!(
        introspect(&env.router, &c, a.json["access_token"].as_str().unwrap()).await["active"],
        false
    );
}

#[tokio::test]
async fn refresh_scope_may_narrow_but_not_widen() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity", "read"]).await;
    let r1 = a.json["refresh_token"].as_str().unwrap();
    let wide = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r1),
            ("scope", "identity read write"),
        ],
        Auth::of(&c),
    )
    .await;
    assert_oauth_error(&wide, StatusCode::BAD_REQUEST, "invalid_scope");
    let narrow = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r1),
            ("scope", "read"),
        ],
        Auth::of(&c),
    )
    .await;
    assert_eq!(narrow.status, StatusCode::OK, "{}", narrow.json);
    assert_eq!(narrow.json["scope"], "read");
    assert_eq!(
        claims_of(narrow.json["access_token"].as_str().unwrap())["scope"],
        "read"
    );
    // The new refresh token keeps the whole grant's scope.
    let next = crate::oauth_common::refresh(
        &env.router,
        &c,
        narrow.json["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(next.json["scope"], "identity read");
}

#[tokio::test]
async fn refresh_token_of_another_client_is_invalid_grant() {
    let env = env().await;
    let (_, a) = tokens_for(&env, &["identity"]).await;
    let other = register(&env.state, true, false, &["identity"]).await;
    let r = crate::oauth_common::refresh(
        &env.router,
        &other,
        a.json["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_oauth_error(&r, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn client_credentials_is_for_confidential_clients_without_refresh_token() {
    let env = env().await;
    let c = register(&env.state, false, false, &["identity", "read"]).await;
    let a = call(
        &env.router,
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("scope", "read")],
        Auth::of(&c),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert!(a.json.get("refresh_token").is_none());
    assert_eq!(a.json["scope"], "read");
    let claims = claims_of(a.json["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], c.id.as_str());
    assert!(claims.get("gid").is_none());
    assert_eq!(
        introspect(&env.router, &c, a.json["access_token"].as_str().unwrap()).await["active"],
        true
    );

    let public = register(&env.state, false, true, &["identity"]).await;
    let a = call(
        &env.router,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Auth::of(&public),
    )
    .await;
    assert_oauth_error(&a, StatusCode::BAD_REQUEST, "unauthorized_client");
}

#[tokio::test]
async fn public_client_uses_pkce_without_a_secret_and_may_not_present_one() {
    let env = env().await;
    let c = register(&env.state, true, true, &["identity"]).await;
    assert!(c.secret.is_none());
    let cookie = cookie(&env.state, "a@example.com").await;
    let code = code_for(&env, &c, &cookie).await;
    let a = exchange(&env.router, &c, &code).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let b =
        crate::oauth_common::refresh(&env.router, &c, a.json["refresh_token"].as_str().unwrap())
            .await;
    assert_eq!(b.status, StatusCode::OK);
    let code = code_for(&env, &c, &cookie).await;
    let a = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Auth::Post(&c.id, "made-up"),
    )
    .await;
    assert_oauth_error(&a, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_grant() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity"]).await;
    let refresh = a.json["refresh_token"].as_str().unwrap();
    let access = a.json["access_token"].as_str().unwrap();
    let r = call(
        &env.router,
        "/oauth/revoke",
        &[("token", refresh), ("token_type_hint", "refresh_token")],
        Auth::of(&c),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(introspect(&env.router, &c, access).await["active"], false);
    assert_oauth_error(
        &crate::oauth_common::refresh(&env.router, &c, refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test]
async fn revoking_an_access_token_makes_it_inactive_and_leaves_the_grant() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity"]).await;
    let access = a.json["access_token"].as_str().unwrap();
    let r = call(
        &env.router,
        "/oauth/revoke",
        &[("token", access)],
        Auth::of(&c),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(introspect(&env.router, &c, access).await["active"], false);
    let b =
        crate::oauth_common::refresh(&env.router, &c, a.json["refresh_token"].as_str().unwrap())
            .await;
    assert_eq!(b.status, StatusCode::OK, "the grant lives on");
    assert_eq!(
        introspect(&env.router, &c, b.json["access_token"].as_str().unwrap()).await["active"],
        true
    );
}

#[tokio::test]
async fn revocation_answers_200_for_unknown_or_foreign_tokens_and_needs_client_auth() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity"]).await;
    let other = register(&env.state, true, false, &["identity"]).await;
    let r = call(
        &env.router,
        "/oauth/revoke",
        &[("token", "never-issued")],
        Auth::of(&c),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let r = call(
        &env.router,
        "/oauth/revoke",
        &[("token", "x"), ("token_type_hint", "bogus")],
        Auth::of(&c),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "an unknown hint is ignored");
    for t in ["refresh_token", "access_token"] {
        let r = call(
            &env.router,
            "/oauth/revoke",
            &[("token", a.json[t].as_str().unwrap())],
            Auth::of(&other),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(
        introspect(&env.router, &c, a.json["access_token"].as_str().unwrap()).await["active"],
        true,
        "another client cannot revoke it"
    );
    let r = call(
        &env.router,
        "/oauth/revoke",
        &[("token", "x")],
        Auth::Nothing,
    )
    .await;
    assert_oauth_error(&r, StatusCode::UNAUTHORIZED, "invalid_client");
    let r = call(&env.router, "/oauth/revoke", &[], Auth::of(&c)).await;
    assert_oauth_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn introspection_is_client_authenticated_and_answers_inactive_for_dead_tokens() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity"]).await;
    let access = a.json["access_token"].as_str().unwrap();
    let refresh = a.json["refresh_token"].as_str().unwrap();
    let j = introspect(&env.router, &c, access).await;
    assert_eq!(j["active"], true);
    assert_eq!(j["scope"], "identity");
    assert_eq!(j["client_id"], c.id.as_str());
    assert_eq!(j["token_type"], "Bearer");
    // A resource server (another confidential client) may introspect access tokens.
    let rs = register(&env.state, false, false, &["identity"]).await;
    assert_eq!(introspect(&env.router, &rs, access).await["active"], true);
    // Refresh tokens: only for their own client.
    let j = introspect(&env.router, &c, refresh).await;
    assert_eq!(j["active"], true);
    assert_eq!(j["token_type"], "refresh_token");
    assert_eq!(introspect(&env.router, &rs, refresh).await["active"], false);
    assert_eq!(
        introspect(&env.router, &c, "garbage").await,
        serde_json::json!({"active": false})
    );
    let public = register(&env.state, false, true, &["identity"]).await;
    let r = call(
        &env.router,
        "/oauth/introspect",
        &[("token", access)],
        Auth::of(&public),
    )
    .await;
    assert_oauth_error(&r, StatusCode::UNAUTHORIZED, "invalid_client");
    let r = call(
        &env.router,
        "/oauth/introspect",
        &[("token", access)],
        Auth::Nothing,
    )
    .await;
    assert_oauth_error(&r, StatusCode::UNAUTHORIZED, "invalid_client");
    env.clock.advance(3600);
    assert_eq!(
        introspect(&env.router, &c, access).await["active"],
        false,
        "expired"
    );
}

#[tokio::test]
async fn introspection_of_a_token_whose_grant_was_revoked_is_inactive() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity"]).await;
    let access = a.json["access_token"].as_str().unwrap();
    let gid = claims_of(access)["gid"].as_str().unwrap().to_string();
    env.state.store.revoke_grant(&gid).await.unwrap();
    assert_eq!(
        introspect(&env.router, &c, access).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn metadata_lists_what_the_server_supports_at_the_root() {
    let env = env().await;
    let r = get(&env.router, "/.well-known/oauth-authorization-server", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "public, max-age=300");
    let m = identity_tests::body_json(r).await;
    let base = "http://127.0.0.1:3000";
    assert_eq!(m["issuer"], base);
    assert_eq!(
        m["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(m["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(m["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    assert_eq!(m["revocation_endpoint"], format!("{base}/oauth/revoke"));
    assert_eq!(
        m["introspection_endpoint"],
        format!("{base}/oauth/introspect")
    );
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert!(
        m["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"identity".into())
    );
    // Every endpoint listed answers (not the JSON 404).
    for key in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let path = m[key]
            .as_str()
            .unwrap()
            .strip_prefix(base)
            .unwrap()
            .to_string();
        let a = call(&env.router, &path, &[], Auth::Nothing).await;
        assert_ne!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn jwks_publishes_the_current_and_previous_keys() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity"]).await;
    let old_token = a.json["access_token"].as_str().unwrap().to_string();
    let r = get(&env.router, "/.well-known/jwks.json", None).await;
    assert_eq!(r.headers()[header::CACHE_CONTROL], "public, max-age=300");
    let set = identity_tests::body_json(r).await;
    assert_eq!(set["keys"].as_array().unwrap().len(), 1);
    assert!(set.to_string().find("\"d\"").is_none(), "no private parts");

    EmbeddedSecrets::new(env.state.store.clone())
        .rotate(SecretKind::Signing)
        .await
        .unwrap();
    // A fresh process (a new state over the same store) sees the rotated document.
    let fresh = identity_shared::AppState {
        secrets: std::sync::Arc::new(identity_shared::secrets::Secrets::new(
            std::sync::Arc::new(EmbeddedSecrets::new(env.state.store.clone())),
            std::time::Duration::from_secs(300),
        )),
        ..env.state.clone()
    };
    let router = identity_cli::router(fresh);
    let set = identity_tests::body_json(get(&router, "/.well-known/jwks.json", None).await).await;
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "current and previous");
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(
        keys[1]["kid"],
        old_kid.as_str(),
        "the previous key is still published"
    );
    assert_eq!(introspect(&router, &c, &old_token).await["active"], true);
}

#[tokio::test]
async fn token_endpoint_answers_only_post() {
    let env = env().await;
    let r = get(&env.router, "/oauth/token", None).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn admin_revocation_of_a_grant_ends_its_tokens() {
    let env = env().await;
    let (c, a) = tokens_for(&env, &["identity"]).await;
    let sub = claims_of(a.json["access_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let grants = env.state.store.grants_of(&sub).await.unwrap();
    assert_eq!(grants.len(), 1);
    env.state.store.revoke_grant(&grants[0].gid).await.unwrap();
    assert_eq!(
        introspect(&env.router, &c, a.json["access_token"].as_str().unwrap()).await["active"],
        false
    );
}

/// `GET /oauth/userinfo` with `Authorization: Bearer TOKEN` (or none).
async fn userinfo(
    env: &Env,
    bearer: Option<&str>,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let mut req = http::Request::get("/oauth/userinfo");
    if let Some(b) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {b}"));
    }
    let r = tower::ServiceExt::oneshot(
        env.router.clone(),
        req.body(axum::body::Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, identity_tests::body_json(r).await)
}

#[tokio::test]
async fn userinfo_names_the_tokens_user_in_the_openid_connect_shape() {
    let env = env().await;
    let (_, a) = tokens_for(&env, &["identity", "read"]).await;
    let access = a.json["access_token"].as_str().unwrap();
    let (status, headers, body) = userinfo(&env, Some(access)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(body["email"], "a@example.com");
    assert_eq!(body["email_verified"], true);
    let claims = claims_of(access);
    assert_eq!(body["sub"], claims["sub"]);
    assert_eq!(
        body.as_object().unwrap().len(),
        3,
        "sub, email, email_verified: {body}"
    );
}

#[tokio::test]
async fn userinfo_refuses_a_missing_invalid_or_revoked_token_and_one_without_the_identity_scope() {
    let env = env().await;
    let (status, headers, _) = userinfo(&env, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"identity\""
    );
    let (status, _, body) = userinfo(&env, Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");

    let (_, read_only) = tokens_for(&env, &["read"]).await;
    let (status, headers, body) =
        userinfo(&env, Some(read_only.json["access_token"].as_str().unwrap())).await;
    let env = crate::oauth_common::env().await; // a fresh person for the next token
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    assert!(
        headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("scope=\"identity\"")
    );

    let (_, a) = tokens_for(&env, &["identity"]).await;
    let access = a.json["access_token"].as_str().unwrap();
    let gid = claims_of(access)["gid"].as_str().unwrap().to_string();
    env.state.store.revoke_grant(&gid).await.unwrap();
    let (status, _, body) = userinfo(&env, Some(access)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoked with its grant: {body}"
    );
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn userinfo_refuses_a_token_limited_to_an_app() {
    let env = env().await;
    let (_, a) = tokens_for(&env, &["identity"]).await;
    let claims: tokens::AccessClaims =
        serde_json::from_value(claims_of(a.json["access_token"].as_str().unwrap())).unwrap();
    let keys = env.state.secrets.signing_keys().await.unwrap();
    let limited = tokens::issue(&keys, &claims.for_app("some-app")).unwrap();
    let (status, _, body) = userinfo(&env, Some(limited.expose_secret())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_token");
}

/// `METHOD /oauth/authorizations…` with a bearer credential and a JSON body.
async fn api_keys_call(
    env: &Env,
    method: http::Method,
    path: &str,
    bearer: &str,
    body: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {bearer}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let r = tower::ServiceExt::oneshot(
        env.router.clone(),
        req.body(axum::body::Body::from(body.unwrap_or("").to_string()))
            .unwrap(),
    )
    .await
    .unwrap();
    let status = r.status();
    (status, identity_tests::body_json(r).await)
}

#[tokio::test]
async fn api_keys_are_made_by_a_fresh_cli_login_then_act_until_revoked_or_their_login_ends() {
    use http::Method;
    let env = env().await;
    let login = cli_login(&env, "a@example.com").await;
    let access = login.json["access_token"].as_str().unwrap();
    let (status, made) = api_keys_call(
        &env,
        Method::POST,
        "/oauth/authorizations",
        access,
        Some(r#"{"description":"CI deploys","expires_in":3600}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let key = made["token"].as_str().unwrap().to_string();
    let id = made["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("idk_"));
    assert_eq!(made["description"], "CI deploys");
    assert!(made["expires_at"].is_string());

    let (status, _, body) = userinfo(&env, Some(&key)).await;
    assert_eq!(
        (status, &body["email"]),
        (StatusCode::OK, &json!("a@example.com"))
    );
    let (status, body) =
        api_keys_call(&env, Method::POST, "/oauth/authorizations", &key, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a key makes no key: {body}");
    let (status, list) =
        api_keys_call(&env, Method::GET, "/oauth/authorizations", &key, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["authorizations"][0]["id"], id.as_str());
    assert!(!list.to_string().contains(&key), "never the token");

    let (status, _) = api_keys_call(
        &env,
        Method::DELETE,
        "/oauth/authorizations/0000000000000000",
        access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api_keys_call(
        &env,
        Method::DELETE,
        &format!("/oauth/authorizations/{id}"),
        access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = userinfo(&env, Some(&key)).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_token"))
    );

    // `identity logout` revokes the login's refresh token, so its grant: the keys it made end.
    let (_, made) = api_keys_call(&env, Method::POST, "/oauth/authorizations", access, None).await;
    let key = made["token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(&env, Some(&key)).await.0, StatusCode::OK);
    let logout = call(
        &env.router,
        "/oauth/revoke",
        &[("token", login.json["refresh_token"].as_str().unwrap())],
        Auth::Public(identity_shared::oauth::client::CLI_CLIENT_ID),
    )
    .await;
    assert_eq!(logout.status, StatusCode::OK);
    let (status, _, body) = userinfo(&env, Some(&key)).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_token")),
        "the key ended with the login that made it"
    );
}

/// Only the CLI's own login, approved by its person minutes ago, makes a key: a third-party
/// app's token with `global` (a phished consent) or a login older than five minutes (its
/// refreshed tokens too) is refused, and nothing is written.
#[tokio::test]
async fn api_keys_are_made_only_by_the_cli_within_minutes_of_a_login() {
    use http::Method;
    let env = env().await;
    let (_, third_party) = tokens_for(&env, &["identity", "global"]).await;
    let login = cli_login(&env, "b@example.com").await;
    let refreshed = call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                login.json["refresh_token"].as_str().unwrap(),
            ),
        ],
        Auth::Public(identity_shared::oauth::client::CLI_CLIENT_ID),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.json);
    let fresh = login.json["access_token"].as_str().unwrap();
    let approved = claims_of(fresh)["auth_time"].clone();
    assert!(
        approved.is_i64(),
        "a device approval is a person's: {approved}"
    );
    let refreshed = refreshed.json["access_token"].as_str().unwrap();
    assert_eq!(
        claims_of(refreshed)["auth_time"],
        approved,
        "a refresh keeps the time of the approval"
    );
    let third_party = third_party.json["access_token"].as_str().unwrap();
    let (status, body) = api_keys_call(
        &env,
        Method::POST,
        "/oauth/authorizations",
        third_party,
        None,
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &json!("forbidden")),
        "a third-party app's token: {body}"
    );
    env.clock
        .advance(identity_shared::api_keys::MINT_WINDOW_SECS + 1);
    for token in [fresh, refreshed] {
        let (status, body) =
            api_keys_call(&env, Method::POST, "/oauth/authorizations", token, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a stale login: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("identity login"),
            "{body}"
        );
    }
    let (_, list) = api_keys_call(&env, Method::GET, "/oauth/authorizations", fresh, None).await;
    assert_eq!(list["authorizations"], json!([]), "nothing made");
}

#[tokio::test]
async fn api_keys_refuse_bad_input_and_tokens_without_the_global_scope() {
    use http::Method;
    let env = env().await;
    let (_, narrow) = tokens_for(&env, &["identity"]).await;
    let (status, body) = api_keys_call(
        &env,
        Method::POST,
        "/oauth/authorizations",
        narrow.json["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &json!("insufficient_scope"))
    );
    let env = env_with(OAuthSettings::default()).await;
    let a = cli_login(&env, "a@example.com").await;
    let access = a.json["access_token"].as_str().unwrap();
    for bad in [
        r#"{"expires_in":5}"#,
        r#"{"expires_in":99999999999}"#,
        "{\"description\":\"a\\u0007b\"}",
        r#"{"scope":"global"}"#,
        "not json",
    ] {
        let (status, body) = api_keys_call(
            &env,
            Method::POST,
            "/oauth/authorizations",
            access,
            Some(bad),
        )
        .await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_request")),
            "{bad}"
        );
    }
    let (_, list) = api_keys_call(&env, Method::GET, "/oauth/authorizations", access, None).await;
    assert_eq!(list["authorizations"], json!([]), "nothing half-made");
}
