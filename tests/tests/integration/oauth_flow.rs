//! The whole code + PKCE flow with an existing OAuth client library as the client: the
//! `oauth2` crate, whose HTTP client here is a closure handing each request to the router
//! in-process. It gets tokens, the access token is verified against the JWKS the server
//! publishes (with jsonwebtoken, not our own verifier), it refreshes, and it revokes.

use crate::oauth_common::*;
use axum::body::Body;
use http::StatusCode;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl,
    PkceCodeChallenge, RedirectUrl, RefreshToken, RevocationUrl, Scope, StandardRevocableToken,
    TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use tower::ServiceExt;

const BASE: &str = "https://id.example.com";

/// The library's HTTP client: the request goes to the router, the answer comes back.
fn in_process(
    router: axum::Router,
) -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, std::io::Error>>>> {
    move |req: oauth2::HttpRequest| {
        let router = router.clone();
        Box::pin(async move {
            let r = router
                .oneshot(req.map(Body::from))
                .await
                .map_err(std::io::Error::other)?;
            let (parts, body) = r.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20)
                .await
                .map_err(std::io::Error::other)?;
            Ok(http::Response::from_parts(parts, bytes.to_vec()))
        })
    }
}

#[tokio::test]
async fn full_code_pkce_flow_with_the_oauth2_crate_gets_verifies_refreshes_and_revokes() {
    let env = env_https().await;
    let registered = register(&env.state, false, false, &["identity", "read"]).await;
    let cookie = cookie(&env.state, "flow@example.com").await;
    let http_client = in_process(env.router.clone());

    let client = BasicClient::new(ClientId::new(registered.id.clone()))
        .set_client_secret(ClientSecret::new(registered.secret.clone().unwrap()))
        .set_auth_uri(AuthUrl::new(format!("{BASE}/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{BASE}/oauth/token")).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("{BASE}/oauth/revoke")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(format!("{BASE}/oauth/introspect")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    // 1. The library builds the authorization URL (PKCE S256, random state).
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("identity".into()))
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let path = format!("{}?{}", auth_url.path(), auth_url.query().unwrap());

    // 2. The browser: consent page, Allow, back to the client with a code.
    let r = get(&env.router, &path, Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    let mut fields: Vec<(String, String)> = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "code_challenge",
        "code_challenge_method",
        "state",
        "csrf",
    ]
    .iter()
    .map(|n| (n.to_string(), hidden_value(&html, n).unwrap()))
    .collect();
    fields.push(("decision".into(), "allow".into()));
    let r = post(
        &env.router,
        "/oauth/authorize",
        form(&fields),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (base, q) = split_url(&location(&r));
    assert_eq!(base, REDIRECT);
    assert_eq!(&q["state"], state.secret(), "state comes back");
    assert_eq!(q["iss"], BASE);

    // 3. The library exchanges the code (client_secret_basic, with the PKCE verifier).
    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .expect("code exchange");
    assert_eq!(tokens.token_type(), &oauth2::basic::BasicTokenType::Bearer);
    let scopes: Vec<String> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["identity", "read"]);
    let access = tokens.access_token().secret().clone();
    let refresh = tokens
        .refresh_token()
        .expect("a refresh token")
        .secret()
        .clone();

    // 4. Verify the access token against the published JWKS, independently of our code.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(
        identity_tests::body_json(get(&env.router, "/.well-known/jwks.json", None).await).await,
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[BASE]);
    validation.set_audience(&[BASE]);
    // Expiry against the pinned clock, below.
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(&access, &key, &validation)
        .expect("signature verifies with the JWKS")
        .claims;
    assert_eq!(claims["client_id"], registered.id.as_str());
    assert_eq!(claims["scope"], "identity read");
    assert!(claims["exp"].as_i64().unwrap() > env.state.now());
    let tampered = {
        let mut parts: Vec<&str> = access.split('.').collect();
        let other = identity_shared::crypto::b64url(br#"{"scope":"global"}"#);
        parts[1] = &other;
        parts.join(".")
    };
    assert!(jsonwebtoken::decode::<serde_json::Value>(&tampered, &key, &validation).is_err());

    // 5. The library refreshes; the refresh token rotates.
    env.clock.advance(60);
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .request_async(&http_client)
        .await
        .expect("refresh");
    let refresh2 = refreshed.refresh_token().unwrap().secret().clone();
    assert_ne!(refresh2, refresh);
    let access2 = refreshed.access_token().clone();
    let spent = client
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .request_async(&http_client)
        .await;
    assert!(spent.is_err(), "the old refresh token is dead");

    let introspected = client
        .introspect(&access2)
        .request_async(&http_client)
        .await
        .unwrap();
    assert!(introspected.active());

    // 6. The library revokes the refresh token: the grant goes, and with it every token.
    client
        .revoke_token(StandardRevocableToken::RefreshToken(RefreshToken::new(
            refresh2.clone(),
        )))
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("revocation");
    let introspected = client
        .introspect(&access2)
        .request_async(&http_client)
        .await
        .unwrap();
    assert!(!introspected.active());
    assert!(
        client
            .exchange_refresh_token(&RefreshToken::new(refresh2))
            .request_async(&http_client)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn oauth2_crate_client_credentials_with_client_secret_post() {
    let env = env_https().await;
    let registered = register(&env.state, false, false, &["identity", "read"]).await;
    let http_client = in_process(env.router.clone());
    let client = BasicClient::new(ClientId::new(registered.id.clone()))
        .set_client_secret(ClientSecret::new(registered.secret.clone().unwrap()))
        .set_auth_type(oauth2::AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(format!("{BASE}/oauth/token")).unwrap());
    let tokens = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http_client)
        .await
        .expect("client credentials");
    assert!(tokens.refresh_token().is_none());
    assert_eq!(tokens.scopes().unwrap()[0].as_str(), "read");
}
