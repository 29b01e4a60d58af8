//! The device authorization grant (RFC 8628) through the routes: `POST
//! /oauth/device/authorize`, the `/device` page, and the token endpoint's polling answers.

use crate::oauth_common::*;
use http::StatusCode;
use identity_shared::accounts::AccountStatus;
use identity_shared::oauth::device::{DEVICE_TTL_SECS, GRANT_TYPE};
use identity_shared::tokens;

async fn start(env: &Env, client: &TestClient, scope: Option<&str>) -> Answer {
    let mut pairs = vec![];
    if let Some(s) = scope {
        pairs.push(("scope", s));
    }
    call(
        &env.router,
        "/oauth/device/authorize",
        &pairs,
        Auth::of(client),
    )
    .await
}

async fn poll(env: &Env, client: &TestClient, device_code: &str) -> Answer {
    call(
        &env.router,
        "/oauth/token",
        &[("grant_type", GRANT_TYPE), ("device_code", device_code)],
        Auth::of(client),
    )
    .await
}

/// The `/device` page as the link opens it: the code form, filled in.
async fn code_form(env: &Env, cookie: &str, user_code: &str) -> String {
    let page = get(
        &env.router,
        &format!("/device?user_code={user_code}"),
        Some(cookie),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    text(page).await
}

/// The code sent from the form (`html`); the page's response.
async fn look_up(env: &Env, cookie: &str, html: &str, user_code: &str) -> axum::response::Response {
    let csrf = hidden_value(html, "csrf").expect("the form's csrf");
    post(
        &env.router,
        "/device",
        form(&[
            ("csrf".into(), csrf),
            ("user_code".into(), user_code.into()),
        ]),
        Some(cookie),
    )
    .await
}

/// The `/device` link for the code, Continue, then the answer; the page's response.
async fn answer(
    env: &Env,
    cookie: &str,
    user_code: &str,
    decision: &str,
) -> axum::response::Response {
    let form_page = code_form(env, cookie, &user_code.to_lowercase()).await;
    assert!(
        form_page.contains(&format!("value=\"{}\"", user_code.to_lowercase())),
        "the link fills the code in: {form_page}"
    );
    let page = look_up(env, cookie, &form_page, &user_code.to_lowercase()).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = text(page).await;
    assert!(
        html.contains(user_code),
        "the page shows the code to compare"
    );
    let csrf = hidden_value(&html, "csrf").expect("csrf");
    post(
        &env.router,
        "/device",
        form(&[
            ("user_code".into(), user_code.into()),
            ("csrf".into(), csrf),
            ("decision".into(), decision.into()),
        ]),
        Some(cookie),
    )
    .await
}

#[tokio::test]
async fn device_flow_issues_tokens_once_after_the_person_approves() {
    let env = env().await;
    let client = register(&env.state, false, true, &["identity", "read"]).await;
    let started = start(&env, &client, Some("read")).await;
    assert_eq!(started.status, StatusCode::OK);
    assert_eq!(started.headers["cache-control"], "no-store");
    let j = &started.json;
    let device_code = j["device_code"].as_str().unwrap().to_string();
    let user_code = j["user_code"].as_str().unwrap().to_string();
    assert_eq!(j["verification_uri"], "http://127.0.0.1:3000/device");
    assert_eq!(
        j["verification_uri_complete"],
        format!("http://127.0.0.1:3000/device?user_code={user_code}")
    );
    assert_eq!(j["expires_in"], DEVICE_TTL_SECS);
    assert_eq!(j["interval"], 5);

    let pending = poll(&env, &client, &device_code).await;
    assert_eq!(pending.status, StatusCode::BAD_REQUEST);
    assert_eq!(pending.json["error"], "authorization_pending");
    // Polling faster than the interval: slow_down.
    assert_eq!(
        poll(&env, &client, &device_code).await.json["error"],
        "slow_down"
    );

    // Not signed in: the page sends the person to the login page first.
    let r = get(&env.router, &format!("/device?user_code={user_code}"), None).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).starts_with("/login?return_to=%2Fdevice"));

    let cookie = cookie(&env.state, "person@example.com").await;
    let done = answer(&env, &cookie, &user_code, "allow").await;
    assert_eq!(done.status(), StatusCode::OK);

    env.clock.advance(11);
    let issued = poll(&env, &client, &device_code).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.json);
    assert_eq!(issued.json["scope"], "read");
    assert!(issued.json["refresh_token"].is_string());
    let keys = env.state.secrets.signing_keys().await.unwrap();
    let claims = tokens::verify(
        &keys,
        issued.json["access_token"].as_str().unwrap(),
        &env.state.config.base_url,
        identity_shared::Clock::now(&env.clock),
    )
    .expect("a valid access token");
    assert_eq!(claims.client_id, client.id);
    // The device code works once.
    let again = poll(&env, &client, &device_code).await;
    assert_eq!(again.json["error"], "invalid_grant");
}

#[tokio::test]
async fn device_flow_denied_expired_and_foreign_codes() {
    let env = env().await;
    let client = register(&env.state, false, true, &["read"]).await;
    let other = register(&env.state, false, true, &["read"]).await;
    let cookie = cookie(&env.state, "person@example.com").await;

    let denied = start(&env, &client, None).await.json;
    let r = answer(&env, &cookie, denied["user_code"].as_str().unwrap(), "deny").await;
    assert_eq!(r.status(), StatusCode::OK);
    let d = poll(&env, &client, denied["device_code"].as_str().unwrap()).await;
    assert_eq!(d.json["error"], "access_denied");

    let foreign = start(&env, &client, None).await.json;
    let f = poll(&env, &other, foreign["device_code"].as_str().unwrap()).await;
    assert_eq!(
        f.json["error"], "invalid_grant",
        "another client's device code"
    );

    let wide = start(&env, &client, Some("write")).await;
    assert_eq!(wide.json["error"], "invalid_scope");

    env.clock.advance(DEVICE_TTL_SECS + 1);
    let late = poll(&env, &client, foreign["device_code"].as_str().unwrap()).await;
    assert_eq!(late.json["error"], "expired_token");
    let code = foreign["user_code"].as_str().unwrap();
    let html = code_form(&env, &cookie, code).await;
    let page = look_up(&env, &cookie, &html, code).await;
    assert_eq!(
        page.status(),
        StatusCode::BAD_REQUEST,
        "an expired code is not shown"
    );
}

#[tokio::test]
async fn device_page_refuses_a_missing_csrf_token_and_pending_accounts() {
    let env = env().await;
    let client = register(&env.state, false, true, &["read"]).await;
    let started = start(&env, &client, None).await.json;
    let user_code = started["user_code"].as_str().unwrap();
    let cookie = cookie(&env.state, "person@example.com").await;
    let r = post(
        &env.router,
        "/device",
        form(&[
            ("user_code".into(), user_code.into()),
            ("decision".into(), "allow".into()),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let p = poll(&env, &client, started["device_code"].as_str().unwrap()).await;
    assert_eq!(p.json["error"], "authorization_pending");

    let pending =
        identity_tests::signed_in_cookie(&env.state, "new@example.com", AccountStatus::Pending)
            .await;
    let r = get(
        &env.router,
        &format!("/device?user_code={user_code}"),
        Some(&pending),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(text(r).await.contains("Activate your account"));
}

#[tokio::test]
async fn metadata_announces_the_device_endpoint() {
    let env = env().await;
    let r = get(&env.router, "/.well-known/oauth-authorization-server", None).await;
    let j: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    assert_eq!(
        j["device_authorization_endpoint"],
        "http://127.0.0.1:3000/oauth/device/authorize"
    );
    assert!(
        j["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&GRANT_TYPE.into())
    );
}

#[tokio::test]
async fn guessed_user_codes_lock_the_account_and_then_even_a_real_code_waits() {
    let env = env().await;
    let client = register(&env.state, false, true, &["read"]).await;
    let guesser = cookie(&env.state, "guesser@example.com").await;
    let real = start(&env, &client, None).await.json;
    let real = real["user_code"].as_str().unwrap().to_string();
    let limit = env.state.config.limits.device.subject;
    let html = code_form(&env, &guesser, "").await;
    let mut statuses = Vec::new();
    for i in 0..limit {
        let page = look_up(&env, &guesser, &html, &format!("BCDF-{:04}", 1000 + i)).await;
        statuses.push(page.status());
    }
    assert!(
        statuses[..limit as usize - 1]
            .iter()
            .all(|s| *s == StatusCode::BAD_REQUEST)
    );
    assert_eq!(statuses[limit as usize - 1], StatusCode::TOO_MANY_REQUESTS);
    let page = look_up(&env, &guesser, &html, &real).await;
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(page.headers().contains_key(http::header::RETRY_AFTER));
    assert!(text(page).await.contains("try again in"));
    // Another person is not affected.
    let other = cookie(&env.state, "bystander@example.com").await;
    let html = code_form(&env, &other, &real).await;
    let page = look_up(&env, &other, &html, &real).await;
    assert_eq!(page.status(), StatusCode::OK);
}

/// What another site can make a signed-in person's browser do: open the link (a top-level
/// GET) or post the form. Neither looks a code up, so neither spends the person's lookup
/// budget: after as many such requests as the limit, the person's own code still shows.
#[tokio::test]
async fn device_codes_are_looked_up_and_counted_only_from_our_own_form() {
    let env = env().await;
    let client = register(&env.state, false, true, &["read"]).await;
    let person = cookie(&env.state, "person@example.com").await;
    let real = start(&env, &client, None).await.json;
    let real = real["user_code"].as_str().unwrap().to_string();
    let limit = env.state.config.limits.device.subject;
    let html = code_form(&env, &person, "").await;
    let csrf = hidden_value(&html, "csrf").unwrap();
    for i in 0..limit * 2 {
        let code = format!("BCDF-{:04}", 1000 + i);
        let page = code_form(&env, &person, &code).await;
        assert!(
            !page.contains("not valid"),
            "the link only fills the form: {page}"
        );
        // The form posted from another site, with the person's cookie and even the token
        // (which another site cannot read): the browser says where it came from.
        let r = tower::ServiceExt::oneshot(
            env.router.clone(),
            http::Request::post("/device")
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(http::header::COOKIE, &person)
                .header(http::header::ORIGIN, "https://elsewhere.example")
                .header("sec-fetch-site", "cross-site")
                .body(axum::body::Body::from(form(&[
                    ("csrf".into(), csrf.clone()),
                    ("user_code".into(), code),
                ])))
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        // Without the token, as a form on another site would send it without metadata.
        let r = post(
            &env.router,
            "/device",
            form(&[("user_code".into(), format!("BCDF-{:04}", 3000 + i))]),
            Some(&person),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let page = look_up(&env, &person, &html, &real).await;
    assert_eq!(page.status(), StatusCode::OK, "nothing was counted");
    assert!(text(page).await.contains(&real));
}

/// A request for the whole account (`global`, what `identity login` asks for) comes with no
/// link that carries its code, and a code a link filled in is not taken for it: the person
/// types the code their device shows. A narrower request still takes the link's code.
#[tokio::test]
async fn a_global_request_wants_its_code_typed_not_filled_in_by_a_link() {
    let env = env().await;
    let client = register(&env.state, false, true, &["identity", "global", "read"]).await;
    let cookie = cookie(&env.state, "person@example.com").await;
    let started = start(&env, &client, Some("identity global")).await;
    assert_eq!(started.status, StatusCode::OK);
    assert!(
        started.json.get("verification_uri_complete").is_none(),
        "{}",
        started.json
    );
    let user_code = started.json["user_code"].as_str().unwrap().to_string();

    // Someone mails the person a link with the code in it.
    let linked = code_form(&env, &cookie, &user_code).await;
    assert!(linked.contains("name=\"linked\""), "{linked}");
    let with_link = |html: &str| {
        form(&[
            ("csrf".into(), hidden_value(html, "csrf").unwrap()),
            ("linked".into(), "1".into()),
            ("user_code".into(), user_code.clone()),
        ])
    };
    let page = post(&env.router, "/device", with_link(&linked), Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = text(page).await;
    assert!(
        html.contains("Type the code your device shows yourself")
            && !html.contains("Approve")
            && !html.contains("name=\"linked\""),
        "{html}"
    );
    // Typed on the empty form, it is shown for approval.
    let typed = look_up(&env, &cookie, &html, &user_code).await;
    assert_eq!(typed.status(), StatusCode::OK);
    assert!(text(typed).await.contains("Approve"));

    // A request for less still takes the link's code.
    let narrow = start(&env, &client, Some("read")).await.json;
    assert!(narrow["verification_uri_complete"].is_string());
    let code = narrow["user_code"].as_str().unwrap();
    let linked = code_form(&env, &cookie, code).await;
    let page = post(
        &env.router,
        "/device",
        form(&[
            ("csrf".into(), hidden_value(&linked, "csrf").unwrap()),
            ("linked".into(), "1".into()),
            ("user_code".into(), code.into()),
        ]),
        Some(&cookie),
    )
    .await;
    assert!(text(page).await.contains("Approve"));
}

/// The approval page says when and from which address the request started, so a person
/// shown a code by someone else can tell it is not their own device's.
#[tokio::test]
async fn the_approval_page_says_when_and_from_which_address_the_request_started() {
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;
    let env = env().await;
    let client = register(&env.state, false, true, &["read"]).await;
    let request = http::Request::post("/oauth/device/authorize")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .extension(ConnectInfo(std::net::SocketAddr::from((
            [203, 0, 113, 7],
            40000,
        ))))
        .body(axum::body::Body::from(format!("client_id={}", client.id)))
        .unwrap();
    let started = env.router.clone().oneshot(request).await.unwrap();
    assert_eq!(started.status(), StatusCode::OK);
    let started = identity_tests::body_json(started).await;
    let user_code = started["user_code"].as_str().unwrap();
    env.clock.advance(150);
    let cookie = cookie(&env.state, "person@example.com").await;
    let html = code_form(&env, &cookie, "").await;
    let page = text(look_up(&env, &cookie, &html, user_code).await).await;
    assert!(
        page.contains("The request was started 2 minutes ago (")
            && page.contains(") from 203.0.113.7."),
        "{page}"
    );
}

/// Starting a device login writes for anyone who asks, so every start counts against its
/// address (its /24) before anything is read or stored: past the limit that address gets
/// 429 and nothing is stored; another address still starts.
#[tokio::test]
async fn device_starts_are_bounded_per_address_before_anything_is_stored() {
    use axum::extract::ConnectInfo;
    use identity_shared::config::Limit;
    use tower::ServiceExt;
    let mut env = env().await;
    let mut config = (*env.state.config).clone();
    config.limits.device_start = Limit {
        subject: 0,
        address: 3,
        total: 0,
    };
    env.state.config = std::sync::Arc::new(config);
    env.router = identity_cli::router(env.state.clone());
    let client = register(&env.state, false, true, &["read"]).await;
    let start_from = |ip: [u8; 4]| {
        let request = http::Request::post("/oauth/device/authorize")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .extension(ConnectInfo(std::net::SocketAddr::from((ip, 40000))))
            .body(axum::body::Body::from(format!("client_id={}", client.id)))
            .unwrap();
        env.router.clone().oneshot(request)
    };
    let devices = |env: &Env| {
        let store = env.state.store.clone();
        let now = identity_shared::Clock::now(&env.clock);
        async move {
            store
                .backend()
                .scan(identity_shared::store::Table::OAuth, now)
                .await
                .unwrap()
                .iter()
                .filter(|i| i.pk.starts_with("device#"))
                .count()
        }
    };
    for i in 0..3 {
        let r = start_from([198, 51, 100, 7 + i]).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "start {i}");
    }
    let stored = devices(&env).await;
    assert_eq!(stored, 3);
    let refused = start_from([198, 51, 100, 200]).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(http::header::RETRY_AFTER));
    assert_eq!(devices(&env).await, stored, "nothing stored when refused");
    let elsewhere = start_from([203, 0, 113, 9]).await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::OK, "another /24 starts");
}
