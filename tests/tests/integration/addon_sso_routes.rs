//! `GET /addons/{addon_id}/sso`, `GET /partner/apps/{app_id}/collaborators` and the example
//! partner through the routers (addon-sso's, as Lambda runs it, and `identity serve`'s):
//! sign-in and pending accounts, the page's headers, the whole path from the platform's
//! page to a verifying partner. The role rules run on both backends in addon_store_suite.

use axum::body::Body;
use http::{Request, StatusCode, header};
use identity_shared::accounts::{AccountStatus, Accounts};
use identity_shared::addons::Addons;
use identity_shared::apps::Apps;
use identity_tests::addon_suite::{SSO_URL, World, embedded_world, form_action, hidden_fields};
use tower::ServiceExt;

#[tokio::test]
async fn no_session_is_sent_to_sign_in_and_back() {
    let (w, _f) = embedded_world().await;
    let path = format!("{}?from=dashboard", w.sso_path());
    let (status, headers, _) = w.get_as(None, &path).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = headers[header::LOCATION].to_str().unwrap();
    let expected = format!(
        "/login?return_to=%2Faddons%2F{}%2Fsso%3Ffrom%3Ddashboard",
        w.addon.addon.id
    );
    assert_eq!(location, expected);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn a_pending_account_is_asked_to_activate_it() {
    let (w, _f) = embedded_world().await;
    let mut pending = w.store().account(&w.member.id).await.unwrap().unwrap();
    pending.status = AccountStatus::Pending;
    let pending = w.store().update_account(&pending).await.unwrap();
    let (status, _, html) = w.get_as(Some(&pending), &w.sso_path()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Activate your account"), "{html}");
    assert!(hidden_fields(&html).is_empty());
}

#[tokio::test]
async fn unknown_addon_is_404_page() {
    let (w, _f) = embedded_world().await;
    for path in [
        format!("/addons/{}/sso", uuid::Uuid::new_v4()),
        "/addons/not%20an%20id/sso".to_string(),
    ] {
        let (status, headers, html) = w.get_as(Some(&w.owner), &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(html.contains("No such add-on"));
    }
}

#[tokio::test]
async fn the_form_page_posts_only_to_the_addon_and_is_never_cached_or_framed() {
    let (w, _f) = embedded_world().await;
    let (status, h, html) = w.get_as(Some(&w.owner), &w.sso_path()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert_eq!(h[header::PRAGMA], "no-cache");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("form-action https://partner.example.com;"),
        "{csp}"
    );
    assert!(!csp.contains("form-action 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(csp.contains(&format!("script-src {}", addon_sso::sso::SCRIPT_HASH)));
    assert!(!csp.contains("script-src 'unsafe-inline'"));
    // The form: POST to the add-on, a visible button, the one allowed script.
    assert_eq!(form_action(&html), SSO_URL);
    assert!(html.contains("<form id=\"sso\" method=\"post\""));
    assert!(html.contains("<button type=\"submit\">"));
    assert!(html.contains(&format!("<script>{}</script>", addon_sso::sso::SCRIPT)));
    assert_eq!(hidden_fields(&html).len(), 11);
}

#[tokio::test]
async fn a_loopback_addon_gets_its_own_origin_in_the_policy() {
    let (w, _f) = embedded_world().await;
    let local = w
        .store()
        .create_addon(&w.app, "local-addon", "http://127.0.0.1:4000/sso?x=1")
        .await
        .unwrap();
    let (status, h, html) = w
        .get_as(Some(&w.collaborator), &local.addon.sso_path())
        .await;
    assert_eq!(status, StatusCode::OK);
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("form-action http://127.0.0.1:4000;"), "{csp}");
    assert_eq!(form_action(&html), "http://127.0.0.1:4000/sso?x=1");
}

#[tokio::test]
async fn partner_api_bad_header_and_bad_app_id() {
    let (w, _f) = embedded_world().await;
    let send = |auth: &'static str, path: String| {
        let state = w.state.clone();
        async move {
            addon_sso::app(state)
                .oneshot(
                    Request::get(path)
                        .header(header::AUTHORIZATION, auth)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap()
        }
    };
    let path = format!("/partner/apps/{}/collaborators", w.app.id);
    for auth in ["Bearer x", "Basic not-base64!", "Basic"] {
        let r = send(auth, path.clone()).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth}");
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(identity_tests::body_json(r).await["error"], "unauthorized");
    }
    let (u, p) = w.partner();
    let (status, _, body) = w.partner_get("bad%20id", Some((u, p))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

/// The whole path as a browser takes it in `identity serve`: the platform's page, its form
/// POSTed to the example partner, which verifies it and shows who signed in, once.
#[tokio::test]
async fn example_partner_verifies_the_form_once() {
    let f = identity_tests::embedded().await;
    let state = identity_tests::jwt_suite::state_on(&f);
    let owner = identity_tests::addon_suite::account(&f.store, "ada@example.com").await;
    let app = f.store.create_app("demo", &owner).await.unwrap();
    let sso_url = state.config.url(identity_cli::example_partner::SSO_PATH);
    let addon = f
        .store
        .create_addon(&app, "demo-addon", &sso_url)
        .await
        .unwrap();
    let w = World {
        state: state.clone(),
        app,
        owner: owner.clone(),
        admin: owner.clone(),
        member: owner.clone(),
        collaborator: owner.clone(),
        stranger: owner.clone(),
        addon,
    };
    let cookie = w.cookie(&owner).await;
    let router = identity_cli::router(state);
    let r = router
        .clone()
        .oneshot(
            Request::get(w.sso_path())
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = String::from_utf8(identity_tests::body_bytes(r).await).unwrap();
    assert_eq!(form_action(&html), sso_url);
    let body = serde_urlencoded::to_string(hidden_fields(&html)).unwrap();
    let post = || {
        Request::post(identity_cli::example_partner::SSO_PATH)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let r = router.clone().oneshot(post()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = String::from_utf8(identity_tests::body_bytes(r).await).unwrap();
    assert!(
        page.contains("as <strong>ada@example.com</strong>"),
        "{page}"
    );
    assert!(page.contains(owner.id.as_str()));
    let r = router.clone().oneshot(post()).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a replay is refused");
    let page = String::from_utf8(identity_tests::body_bytes(r).await).unwrap();
    assert!(page.contains("already been used"), "{page}");
    // A tampered form is refused.
    let tampered = body.replace("ada%40example.com", "eve%40example.com");
    assert_ne!(tampered, body);
    let r = router
        .oneshot(
            Request::post(identity_cli::example_partner::SSO_PATH)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(tampered))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[test]
fn serve_prints_the_example_partner() {
    let urls = identity_cli::urls("http://127.0.0.1:3000");
    assert!(
        urls.iter()
            .any(|(_, u)| u == "http://127.0.0.1:3000/example-partner")
    );
}

/// A "log in as" session does not sign a partner in as the person (that is handing out a
/// credential), and the refusal is audited like every request of such a session.
#[tokio::test]
async fn a_log_in_as_session_gets_no_addon_sso_form() {
    use identity_shared::audit::Audit;
    use identity_shared::session::{Impersonation, Sessions};
    let (w, _f) = embedded_world().await;
    let (id, session) = w
        .state
        .store
        .start_impersonation(
            &w.owner,
            Impersonation {
                by: "ops".into(),
                reason: "offboarding".into(),
                operator: String::new(),
            },
        )
        .await
        .unwrap();
    let cookie = w.state.session_cookie(&id, &session).await.unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let r = ::addon_sso::app(w.state.clone())
        .oneshot(
            Request::get(w.sso_path())
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = String::from_utf8(identity_tests::body_bytes(r).await).unwrap();
    assert!(
        html.contains("Not while signed in as someone else"),
        "{html}"
    );
    assert!(
        html.contains("Signed in as owner@example.com by admin ops"),
        "the banner"
    );
    assert!(!html.contains("resource_token"), "no form");
    let audit = w.state.store.audit_entries(5).await.unwrap();
    assert_eq!(audit[0].action, "GET /addons/{addon_id}/sso");
    assert_eq!(
        (audit[0].by.as_str(), audit[0].email.as_str()),
        ("ops", "owner@example.com")
    );
}
