//! The logging rule for OAuth, in a binary of its own (tracing's callsite cache is
//! process-wide): a whole flow at TRACE — authorize, exchange, refresh, reuse, introspect,
//! revoke, failures — leaves no secret, code, token or verifier in the logs.

use crate::oauth_common::*;
use http::StatusCode;

#[tokio::test(flavor = "current_thread")]
async fn oauth_secrets_never_reach_the_logs() {
    let env = env_with(identity_shared::oauth::OAuthSettings {
        refresh_grace_secs: 0,
    })
    .await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let secret = c.secret.clone().unwrap();
    let cookie = cookie(&env.state, "log@example.com").await;
    let captured = identity_tests::CapturedLogs::default();
    let writer = captured.clone();
    let subscriber = identity_shared::logging::subscriber(
        identity_shared::logging::Format::Json,
        "trace",
        move || writer.clone(),
    );
    let guard = tracing::subscriber::set_default(subscriber);

    let code = code_for(&env, &c, &cookie).await;
    let a = exchange(&env.router, &c, &code).await;
    assert_eq!(a.status, StatusCode::OK);
    let access = a.json["access_token"].as_str().unwrap().to_string();
    let r1 = a.json["refresh_token"].as_str().unwrap().to_string();
    let b = refresh(&env.router, &c, &r1).await;
    let r2 = b.json["refresh_token"].as_str().unwrap().to_string();
    introspect(&env.router, &c, &access).await;
    let _ = exchange(&env.router, &c, &code).await; // reuse: revokes
    let _ = refresh(&env.router, &c, &r1).await; // reuse
    let _ = call(
        &env.router,
        "/oauth/revoke",
        &[("token", &r2)],
        Auth::of(&c),
    )
    .await;
    let _ = call(
        &env.router,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Auth::Basic(&c.id, "wrong-secret-value"),
    )
    .await;
    drop(guard);

    let logs = String::from_utf8(captured.contents()).unwrap();
    assert!(logs.contains("authorization code exchanged"), "{logs}");
    assert!(logs.contains("used twice"), "the reuse is logged: {logs}");
    let cookie_value = cookie.split_once('=').unwrap().1.to_string();
    for (what, value) in [
        ("client secret", secret.as_str()),
        ("wrong secret", "wrong-secret-value"),
        ("code", code.as_str()),
        ("access token", access.as_str()),
        ("refresh token", r1.as_str()),
        ("rotated refresh token", r2.as_str()),
        ("verifier", VERIFIER),
        ("cookie", cookie_value.as_str()),
    ] {
        assert!(
            !logs.contains(value),
            "{what} leaked into the logs:\n{logs}"
        );
    }
}
