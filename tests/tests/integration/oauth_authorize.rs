//! `GET/POST /oauth/authorize` and `/account/authorizations` through `identity serve`'s
//! router: each rule of issue 3 for the browser side, named after it.

use crate::oauth_common::*;
use http::{StatusCode, header};
use identity_shared::accounts::AccountStatus;
use identity_shared::oauth::Grants;

fn is_page(r: &axum::response::Response) -> bool {
    r.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"))
}

/// An error page: the status, HTML, and no redirect anywhere.
async fn assert_error_page(r: axum::response::Response, status: StatusCode, says: &str) {
    assert_eq!(r.status(), status);
    assert!(
        r.headers().get(header::LOCATION).is_none(),
        "never a redirect"
    );
    assert!(is_page(&r));
    let html = text(r).await;
    assert!(html.contains(says), "{html}");
}

/// A §4.1.2.1 error redirect to the registered URI with `error`, a description and state.
fn assert_error_redirect(r: &axum::response::Response, error: &str) {
    assert_eq!(r.status(), StatusCode::FOUND);
    let (base, q) = split_url(&location(r));
    assert_eq!(base, REDIRECT);
    assert_eq!(q["error"], error, "{q:?}");
    assert!(!q["error_description"].is_empty());
    assert_eq!(q.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(q["iss"], "http://127.0.0.1:3000", "RFC 9207");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn no_session_redirects_to_login_with_return_to_this_request() {
    let env = env().await;
    let c = register(&env.state, false, false, &["identity"]).await;
    let path = authorize_path(&params(&c.id));
    let r = get(&env.router, &path, None).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let (base, q) = split_url(&location(&r));
    assert_eq!(base, "/login");
    assert_eq!(q["return_to"], path);
}

#[tokio::test]
async fn unknown_client_gets_an_error_page_never_a_redirect() {
    let env = env().await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let r = get(
        &env.router,
        &authorize_path(&params("no-such-client")),
        Some(&cookie),
    )
    .await;
    assert_error_page(r, StatusCode::BAD_REQUEST, "not registered").await;
    let r = get(
        &env.router,
        &authorize_path(&with(params("x"), "client_id", None)),
        Some(&cookie),
    )
    .await;
    assert_error_page(r, StatusCode::BAD_REQUEST, "client_id").await;
}

#[tokio::test]
async fn redirect_uri_prefix_extra_path_other_port_are_refused_with_an_error_page() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    for bad in [
        "https://app.example.com/callbac",
        "https://app.example.com/call",
        "https://app.example.com/callback/extra",
        "https://app.example.com/callback?x=1",
        "https://app.example.com:8443/callback",
        "http://127.0.0.1:8081/cb",
        "https://evil.example.com/callback",
        "HTTPS://app.example.com/callback",
    ] {
        let p = with(params(&c.id), "redirect_uri", Some(bad));
        let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
        assert_error_page(r, StatusCode::BAD_REQUEST, "redirect URI").await;
    }
    let p = with(params(&c.id), "redirect_uri", None);
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_page(r, StatusCode::BAD_REQUEST, "redirect_uri").await;
    // Both registered URIs work.
    let p = with(
        params(&c.id),
        "redirect_uri",
        Some("http://127.0.0.1:8080/cb"),
    );
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).starts_with("http://127.0.0.1:8080/cb?code="));
}

#[tokio::test]
async fn repeated_client_id_or_redirect_uri_gets_an_error_page_other_repeats_redirect() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let mut p = params(&c.id);
    p.push(("client_id".into(), c.id.clone()));
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_page(r, StatusCode::BAD_REQUEST, "more than once").await;
    let mut p = params(&c.id);
    p.push(("redirect_uri".into(), REDIRECT.into()));
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_page(r, StatusCode::BAD_REQUEST, "more than once").await;
    let mut p = params(&c.id);
    p.push(("scope".into(), "identity".into()));
    p.push(("scope".into(), "identity".into()));
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_redirect(&r, "invalid_request");
}

#[tokio::test]
async fn pkce_missing_is_refused_by_redirect() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let p = with(params(&c.id), "code_challenge", None);
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_redirect(&r, "invalid_request");
}

#[tokio::test]
async fn pkce_plain_is_refused() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let p = with(params(&c.id), "code_challenge_method", Some("plain"));
    let p = with(p, "code_challenge", Some(VERIFIER));
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_redirect(&r, "invalid_request");
    // No method means plain (RFC 7636 §4.3): refused too.
    let p = with(params(&c.id), "code_challenge_method", None);
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_redirect(&r, "invalid_request");
    let p = with(params(&c.id), "code_challenge", Some("not-a-challenge"));
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_redirect(&r, "invalid_request");
}

#[tokio::test]
async fn response_type_other_than_code_is_unsupported_response_type() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let p = with(params(&c.id), "response_type", Some("token"));
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_redirect(&r, "unsupported_response_type");
    let p = with(params(&c.id), "response_type", None);
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_error_redirect(&r, "invalid_request");
}

#[tokio::test]
async fn scope_is_checked_against_the_clients_scopes() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity", "read"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    for bad in ["global", "identity write", "admin", "identity Read"] {
        let p = with(params(&c.id), "scope", Some(bad));
        let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
        assert_error_redirect(&r, "invalid_scope");
    }
    // Without scope: everything the client is registered for.
    let code = code_for(&env, &c, &cookie).await;
    let a = exchange(&env.router, &c, &code).await;
    assert_eq!(a.json["scope"], "identity read");
}

#[tokio::test]
async fn errors_are_checked_before_sign_in() {
    let env = env().await;
    let c = register(&env.state, false, false, &["identity"]).await;
    let p = with(params(&c.id), "scope", Some("global"));
    let r = get(&env.router, &authorize_path(&p), None).await;
    assert_error_redirect(&r, "invalid_scope");
}

#[tokio::test]
async fn pending_account_sees_the_activate_your_account_page() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie =
        identity_tests::signed_in_cookie(&env.state, "p@example.com", AccountStatus::Pending).await;
    let r = get(&env.router, &authorize_path(&params(&c.id)), Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(header::LOCATION).is_none());
    let html = text(r).await;
    assert!(html.contains("<h1>Activate your account</h1>"), "{html}");
    assert!(html.contains("p@example.com"));
}

#[tokio::test]
async fn trusted_client_goes_straight_back_with_a_code_and_untrusted_sees_consent() {
    let env = env().await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let trusted = register(&env.state, true, false, &["identity"]).await;
    let r = get(
        &env.router,
        &authorize_path(&params(&trusted.id)),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    let (base, q) = split_url(&location(&r));
    assert_eq!(base, REDIRECT);
    assert_eq!(q["code"].len(), 43, "256 random bits");
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], "http://127.0.0.1:3000", "RFC 9207");

    let untrusted = register(&env.state, false, false, &["identity", "read"]).await;
    let r = get(
        &env.router,
        &authorize_path(&params(&untrusted.id)),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get(header::LOCATION).is_none());
    let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    // The answer redirects to the client: its origin, and only it, joins `form-action`.
    assert!(
        csp.contains("form-action 'self' https://app.example.com;"),
        "the answer redirects to the client: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
    let html = text(r).await;
    assert!(
        html.contains("Third-party &amp; Co"),
        "the client is named, escaped: {html}"
    );
    assert!(html.contains("See your email address and account id."));
    assert!(html.contains("Read your apps and their settings, except protected"));
    assert!(html.contains("name=\"decision\" value=\"allow\""));
    assert!(html.contains("name=\"decision\" value=\"deny\""));
    assert!(
        html.contains("https://app.example.com"),
        "where the person will be sent"
    );
    assert!(hidden_value(&html, "csrf").is_some());
    assert!(!html.contains("<script"));
}

/// A public client redirecting to a loopback address could be any program on the machine:
/// it never gets a code without the person's interaction, trusted or remembered
/// (RFC 8252 §8.6). The same client on its https redirect URI is treated as usual.
#[tokio::test]
async fn public_client_on_a_loopback_redirect_always_shows_consent() {
    let env = env().await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let native = register(&env.state, true, true, &["identity"]).await;
    let loopback = with(
        params(&native.id),
        "redirect_uri",
        Some("http://127.0.0.1:8080/cb"),
    );
    for _ in 0..2 {
        let r = get(&env.router, &authorize_path(&loopback), Some(&cookie)).await;
        assert_eq!(r.status(), StatusCode::OK, "a consent page, not a redirect");
        assert!(r.headers().get(header::LOCATION).is_none());
        // Even after the person allowed it once.
        let html = consent_page(&env, &native, &cookie, &loopback).await;
        let answer = consent_form(&html, "allow");
        let r = post(
            &env.router,
            "/oauth/authorize",
            form(&answer),
            Some(&cookie),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let r = get(
        &env.router,
        &authorize_path(&params(&native.id)),
        Some(&cookie),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "trusted, on its https redirect URI"
    );
}

async fn consent_page(env: &Env, c: &TestClient, cookie: &str, p: &[(String, String)]) -> String {
    let r = get(&env.router, &authorize_path(p), Some(cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let _ = c;
    text(r).await
}

/// The consent form's fields, as a browser would submit them with `decision`.
fn consent_form(html: &str, decision: &str) -> Vec<(String, String)> {
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
    .filter_map(|n| hidden_value(html, n).map(|v| (n.to_string(), v)))
    .collect();
    fields.push(("decision".into(), decision.into()));
    fields
}

#[tokio::test]
async fn consent_post_without_a_valid_csrf_token_is_refused() {
    let env = env().await;
    let c = register(&env.state, false, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let html = consent_page(&env, &c, &cookie, &params(&c.id)).await;
    let good = consent_form(&html, "allow");
    let other_cookie = crate::oauth_common::cookie(&env.state, "b@example.com").await;
    let other_html = consent_page(&env, &c, &other_cookie, &params(&c.id)).await;
    let other_csrf = hidden_value(&other_html, "csrf").unwrap();
    for (why, fields) in [
        ("missing", with(good.clone(), "csrf", None)),
        ("wrong", with(good.clone(), "csrf", Some("AAAA"))),
        (
            "another session's",
            with(good.clone(), "csrf", Some(&other_csrf)),
        ),
    ] {
        let r = post(
            &env.router,
            "/oauth/authorize",
            form(&fields),
            Some(&cookie),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{why}");
        assert!(r.headers().get(header::LOCATION).is_none(), "{why}");
    }
    let mut twice = good.clone();
    twice.push(("csrf".into(), hidden_value(&html, "csrf").unwrap()));
    let r = post(&env.router, "/oauth/authorize", form(&twice), Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "repeated csrf");
    let r = post(&env.router, "/oauth/authorize", form(&good), None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no session");
    assert!(r.headers().get(header::LOCATION).is_none());
    assert!(
        env.state
            .store
            .grants_of(&account_id(&env, "a@example.com").await)
            .await
            .unwrap()
            .is_empty(),
        "nothing was granted"
    );
    // The token bound to this session and client works.
    let r = post(&env.router, "/oauth/authorize", form(&good), Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn account_id(env: &Env, email: &str) -> String {
    use identity_shared::accounts::{Accounts, Email};
    env.state
        .store
        .account_by_email(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

#[tokio::test]
async fn consent_allow_redirects_with_a_code_and_deny_with_access_denied() {
    let env = env().await;
    let c = register(&env.state, false, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let html = consent_page(&env, &c, &cookie, &params(&c.id)).await;

    let r = post(
        &env.router,
        "/oauth/authorize",
        form(&consent_form(&html, "deny")),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (base, q) = split_url(&location(&r));
    assert_eq!(base, REDIRECT);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "xyz");
    assert!(!q.contains_key("code"));

    let r = post(
        &env.router,
        "/oauth/authorize",
        form(&consent_form(&html, "allow")),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, q) = split_url(&location(&r));
    assert_eq!(q["state"], "xyz");
    let a = exchange(&env.router, &c, &q["code"]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);

    let r = post(
        &env.router,
        "/oauth/authorize",
        form(&consent_form(&html, "maybe")),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn consent_post_is_judged_again_like_the_request() {
    let env = env().await;
    let c = register(&env.state, false, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let html = consent_page(&env, &c, &cookie, &params(&c.id)).await;
    let tampered = with(
        consent_form(&html, "allow"),
        "redirect_uri",
        Some("https://evil.example.com/cb"),
    );
    let r = post(
        &env.router,
        "/oauth/authorize",
        form(&tampered),
        Some(&cookie),
    )
    .await;
    assert_error_page(r, StatusCode::BAD_REQUEST, "redirect URI").await;
    let wider = with(consent_form(&html, "allow"), "scope", Some("global"));
    let r = post(&env.router, "/oauth/authorize", form(&wider), Some(&cookie)).await;
    assert_error_redirect(&r, "invalid_scope");
}

#[tokio::test]
async fn earlier_consent_with_the_same_or_fewer_scopes_is_remembered() {
    let env = env().await;
    let c = register(&env.state, false, false, &["identity", "read", "write"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let p = with(params(&c.id), "scope", Some("identity read"));
    let html = consent_page(&env, &c, &cookie, &p).await;
    let r = post(
        &env.router,
        "/oauth/authorize",
        form(&consent_form(&html, "allow")),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    for same_or_fewer in ["identity read", "read", "identity"] {
        let p = with(params(&c.id), "scope", Some(same_or_fewer));
        let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{same_or_fewer}");
        assert!(split_url(&location(&r)).1.contains_key("code"));
    }
    let p = with(params(&c.id), "scope", Some("identity write"));
    let r = get(&env.router, &authorize_path(&p), Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::OK, "a new scope asks again");
    // Another person has consented to nothing.
    let other = crate::oauth_common::cookie(&env.state, "b@example.com").await;
    let r = get(&env.router, &authorize_path(&params(&c.id)), Some(&other)).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn account_authorizations_lists_grants_and_revokes_one_with_csrf() {
    let env = env().await;
    let c = register(&env.state, true, false, &["identity", "read"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let code = code_for(&env, &c, &cookie).await;
    let tokens = exchange(&env.router, &c, &code).await;
    let access = tokens.json["access_token"].as_str().unwrap().to_string();

    let r = get(&env.router, "/account/authorizations", Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(html.contains("Trusted &lt;Dashboard&gt;"), "{html}");
    assert!(html.contains("See your email address"));
    let gid = hidden_value(&html, "grant_id").unwrap();
    let csrf = hidden_value(&html, "csrf").unwrap();

    let no_csrf = form(&[("grant_id".to_string(), gid.clone())]);
    let r = post(
        &env.router,
        "/account/authorizations/revoke",
        no_csrf,
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(introspect(&env.router, &c, &access).await["active"], true);

    let other = crate::oauth_common::cookie(&env.state, "b@example.com").await;
    let other_html = text(get(&env.router, "/account/authorizations", Some(&other)).await).await;
    assert!(
        other_html.contains("No application has access"),
        "{other_html}"
    );
    code_for(&env, &c, &other).await;
    let other_html = text(get(&env.router, "/account/authorizations", Some(&other)).await).await;
    assert_ne!(
        hidden_value(&other_html, "grant_id").unwrap(),
        gid,
        "one grant each"
    );
    let other_csrf = hidden_value(&other_html, "csrf").unwrap();
    let steal = form(&[
        ("grant_id".to_string(), gid.clone()),
        ("csrf".to_string(), other_csrf),
    ]);
    let r = post(
        &env.router,
        "/account/authorizations/revoke",
        steal,
        Some(&other),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "another account's grant");
    assert_eq!(introspect(&env.router, &c, &access).await["active"], true);

    let ok = form(&[("grant_id".to_string(), gid), ("csrf".to_string(), csrf)]);
    let r = post(
        &env.router,
        "/account/authorizations/revoke",
        ok,
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account/authorizations");
    assert_eq!(introspect(&env.router, &c, &access).await["active"], false);
    let refresh = tokens.json["refresh_token"].as_str().unwrap();
    assert_oauth_error(
        &crate::oauth_common::refresh(&env.router, &c, refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    let html = text(get(&env.router, "/account/authorizations", Some(&cookie)).await).await;
    assert!(html.contains("No application has access"));
}

#[tokio::test]
async fn account_authorizations_without_a_session_redirects_to_login() {
    let env = env().await;
    let r = get(&env.router, "/account/authorizations", None).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "/login?return_to=%2Faccount%2Fauthorizations");
}

#[tokio::test]
async fn revoked_grant_asks_for_consent_again() {
    let env = env().await;
    let c = register(&env.state, false, false, &["identity"]).await;
    let cookie = cookie(&env.state, "a@example.com").await;
    let html = consent_page(&env, &c, &cookie, &params(&c.id)).await;
    post(
        &env.router,
        "/oauth/authorize",
        form(&consent_form(&html, "allow")),
        Some(&cookie),
    )
    .await;
    let acct = account_id(&env, "a@example.com").await;
    let grants = env.state.store.grants_of(&acct).await.unwrap();
    assert_eq!(grants.len(), 1);
    env.state.store.revoke_grant(&grants[0].gid).await.unwrap();
    let r = get(&env.router, &authorize_path(&params(&c.id)), Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::OK, "consent page again");
}

/// `POST /apps/{app}/transfer`: only the owner, with the page's token, to an account that
/// exists and is not blocked; the previous owner stays as an admin.
#[tokio::test]
async fn an_owner_transfers_an_app_and_nobody_else_can() {
    use identity_shared::accounts::{Accounts, Email, Offboarding};
    use identity_shared::apps::{Apps, Role};
    let env = env().await;
    let store = &env.state.store;
    let owner_cookie = crate::oauth_common::cookie(&env.state, "owner@example.com").await;
    let owner = store
        .account_by_email(&Email::parse("owner@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let app = store.create_app("shop", &owner).await.unwrap();
    let other_cookie = crate::oauth_common::cookie(&env.state, "other@example.com").await;
    // An account that is then blocked (the helper signs it in, which makes it).
    crate::oauth_common::cookie(&env.state, "gone@example.com").await;
    let gone = store
        .account_by_email(&Email::parse("gone@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    store.block_account(&gone.id).await.unwrap();

    let html = text(get(&env.router, "/account/apps", Some(&owner_cookie)).await).await;
    assert!(html.contains("Transfer shop"), "{html}");
    let csrf = hidden_value(&html, "csrf").unwrap();
    let path = format!("/apps/{}/transfer", app.id);
    let send = |cookie: &str, fields: &[(&str, &str)]| {
        let body = form(
            &fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        );
        let (router, path, cookie) = (env.router.clone(), path.clone(), cookie.to_string());
        async move { post(&router, &path, body, Some(&cookie)).await.status() }
    };
    assert_eq!(
        send(&owner_cookie, &[("new_owner", "other@example.com")]).await,
        StatusCode::FORBIDDEN,
        "no token"
    );
    let other_html = text(get(&env.router, "/account/apps", Some(&other_cookie)).await).await;
    assert!(other_html.contains("You have no apps."), "{other_html}");
    assert_eq!(
        send(
            &other_cookie,
            &[("new_owner", "other@example.com"), ("csrf", &csrf)]
        )
        .await,
        StatusCode::FORBIDDEN,
        "another session's token"
    );
    for bad in ["nobody@example.com", "gone@example.com", "not an email"] {
        assert_eq!(
            send(&owner_cookie, &[("new_owner", bad), ("csrf", &csrf)]).await,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        store.app(&app.id).await.unwrap().unwrap().owner_account_id,
        owner.id
    );
    assert_eq!(
        send(
            &owner_cookie,
            &[("new_owner", "other@example.com"), ("csrf", &csrf)]
        )
        .await,
        StatusCode::OK
    );
    let other = store
        .account_by_email(&Email::parse("other@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.role_of(&app.id, &other.id).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(
        store.role_of(&app.id, &owner.id).await.unwrap(),
        Some(Role::Admin)
    );
    assert_eq!(
        send(
            &owner_cookie,
            &[("new_owner", "owner@example.com"), ("csrf", &csrf)]
        )
        .await,
        StatusCode::NOT_FOUND,
        "no longer the owner"
    );
}

/// A "log in as" session authorizes no application (no code, even for a trusted client) and
/// changes no API key; it still sees the pages, with the banner.
#[tokio::test]
async fn a_log_in_as_session_authorizes_nothing_and_changes_no_api_key() {
    use identity_shared::accounts::{AccountStatus, Accounts, Email};
    use identity_shared::api_keys::ApiKeys;
    use identity_shared::session::{Impersonation, Sessions};
    let env = env().await;
    let store = &env.state.store;
    let pat = store
        .create_account(
            &Email::parse("pat@example.com").unwrap(),
            None,
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let login = identity_tests::cli_login_grant(store, &pat).await;
    let (key, token) = store
        .create_api_key(&pat, &login, Some("CI"), None)
        .await
        .unwrap();
    let (id, session) = store
        .start_impersonation(
            &pat,
            Impersonation {
                by: "ops".into(),
                reason: "offboarding".into(),
                operator: String::new(),
            },
        )
        .await
        .unwrap();
    let set = env.state.session_cookie(&id, &session).await.unwrap();
    let cookie = set.split(';').next().unwrap().to_string();

    let trusted = register(&env.state, true, false, &["identity"]).await;
    let r = get(
        &env.router,
        &authorize_path(&params(&trusted.id)),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no code");
    assert!(r.headers().get(header::LOCATION).is_none());

    let html = text(get(&env.router, "/account/authorizations", Some(&cookie)).await).await;
    assert!(
        html.contains("Signed in as pat@example.com by admin ops"),
        "{html}"
    );
    let csrf = hidden_value(&html, "csrf").unwrap();
    let r = post(
        &env.router,
        "/account/authorizations/revoke",
        form(&[
            ("api_key_id".to_string(), key.id.clone()),
            ("csrf".to_string(), csrf),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        store
            .api_key_in_use(token.expose_secret())
            .await
            .unwrap()
            .is_some(),
        "the key still works"
    );
}
