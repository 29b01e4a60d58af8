//! `GET /session` and `POST /logout` through the merged router (`identity serve`'s), and
//! the logging rule: a request carrying secrets leaves none of them in the logs.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode, header};
use identity_shared::accounts::{AccountStatus, Accounts, Email};
use identity_shared::session::Sessions;
use tower::ServiceExt;

fn get_session(cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get("/session");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn no_cookie_is_401_json() {
    let (state, _clock, _dir) = identity_tests::app_state().await;
    let r = identity_cli::router(state)
        .oneshot(get_session(None))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    let body = identity_tests::body_json(r).await;
    assert_eq!(body["error"], "no_session");
}

#[tokio::test]
async fn session_json_describes_the_signed_in_user() {
    let (state, _clock, _dir) = identity_tests::app_state().await;
    let cookie =
        identity_tests::signed_in_cookie(&state, "Ada@Example.com", AccountStatus::Pending).await;
    let r = identity_cli::router(state)
        .oneshot(get_session(Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    let body = identity_tests::body_json(r).await;
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["sso"], true);
    assert_eq!(body["idp"], "acme");
    assert!(body["account_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        body["expires_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
}

#[tokio::test]
async fn tampered_foreign_or_expired_cookie_is_no_session() {
    let (state, clock, _dir) = identity_tests::app_state().await;
    let cookie =
        identity_tests::signed_in_cookie(&state, "a@example.com", AccountStatus::Active).await;
    let router = identity_cli::router(state.clone());

    let tampered = format!("{}A", cookie);
    let r = router
        .clone()
        .oneshot(get_session(Some(&tampered)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "tampered");

    let (other, _c, _d) = identity_tests::app_state().await;
    let foreign =
        identity_tests::signed_in_cookie(&other, "a@example.com", AccountStatus::Active).await;
    let r = router
        .clone()
        .oneshot(get_session(Some(&foreign)))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "sealed by another deployment's key"
    );

    let r = router
        .clone()
        .oneshot(get_session(Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the real cookie works");
    clock.advance(state.config.session_lifetime_secs);
    let r = router.oneshot(get_session(Some(&cookie))).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "expired after 8 hours"
    );
}

#[tokio::test]
async fn logout_ends_the_session_server_side() {
    let (state, _clock, _dir) = identity_tests::app_state().await;
    let cookie =
        identity_tests::signed_in_cookie(&state, "a@example.com", AccountStatus::Active).await;
    let router = identity_cli::router(state);
    // Without the proof every form needs (same-origin Fetch Metadata or the button's
    // session-bound token), nobody is signed out: another site cannot do it.
    for proofless in [
        Request::post("/logout").header(header::COOKIE, &cookie),
        Request::post("/logout")
            .header(header::COOKIE, &cookie)
            .header("sec-fetch-site", "cross-site"),
        Request::post("/logout")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
    ] {
        let r = router
            .clone()
            .oneshot(proofless.body(Body::from("csrf=AAAA")).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = router
            .clone()
            .oneshot(get_session(Some(&cookie)))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "still signed in");
    }
    let r = router
        .clone()
        .oneshot(
            Request::post("/logout")
                .header(header::COOKIE, &cookie)
                .header("sec-fetch-site", "same-origin")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let set = r.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("identity_session=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    // The old cookie, replayed, no longer works: the record is gone.
    let r = router
        .clone()
        .oneshot(get_session(Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = router
        .oneshot(
            Request::post("/logout")
                .header(header::ACCEPT, "text/html")
                .header("sec-fetch-site", "same-origin")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/login");
}

#[tokio::test]
async fn session_cookie_is_secure_under_https() {
    let (state, _clock, _dir) = identity_tests::app_state().await;
    let account = state
        .store
        .create_account(
            &Email::parse("h@example.com").unwrap(),
            None,
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let (id, s) = state.store.start_session(&account, None, 60).await.unwrap();
    let plain = state.session_cookie(&id, &s).await.unwrap();
    assert!(
        plain.contains("HttpOnly") && plain.contains("SameSite=Lax") && !plain.contains("Secure")
    );
    let mut https = state.clone();
    let mut config = (*https.config).clone();
    config.base_url = "https://id.example.com".into();
    https.config = Arc::new(config);
    let secure = https.session_cookie(&id, &s).await.unwrap();
    assert!(secure.contains("; Secure"), "{secure}");
    assert!(
        secure.starts_with("__Host-identity_session=") && !secure.contains("Domain"),
        "under https the cookie is __Host- bound to this host: {secure}"
    );
}

#[tokio::test]
async fn responses_carry_request_id_and_security_headers() {
    let (state, _clock, _dir) = identity_tests::app_state().await;
    let r = identity_cli::router(state)
        .oneshot(
            Request::get("/session")
                .header("x-request-id", "req-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-123");
    assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(
        r.headers()[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    // Not `no-referrer`: under it browsers post `Origin: null` from our own forms.
    assert_eq!(r.headers()[header::REFERRER_POLICY], "same-origin");
}

#[tokio::test]
async fn unknown_route_is_404_json() {
    let (state, _clock, _dir) = identity_tests::app_state().await;
    let r = identity_cli::router(state)
        .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(identity_tests::body_json(r).await["error"], "not_found");
}
