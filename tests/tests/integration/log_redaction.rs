//! The logging rule, in a binary of its own (tracing's callsite cache is process-wide, so
//! no other test may run beside it): a request carrying secrets leaves none in the logs.

use axum::body::Body;
use http::{Request, header};
use identity_shared::accounts::AccountStatus;
use tower::ServiceExt;

/// At TRACE, for every target, a request carrying a session cookie and a form field with a
/// password leaves neither in the logs, and every line of the request has its request id.
#[tokio::test(flavor = "current_thread")]
async fn request_secrets_never_reach_the_logs() {
    let (state, _clock, _dir) = identity_tests::app_state().await;
    let cookie =
        identity_tests::signed_in_cookie(&state, "log@example.com", AccountStatus::Active).await;
    let cookie_secret = cookie.split_once('=').unwrap().1.to_string();
    let captured = identity_tests::CapturedLogs::default();
    let writer = captured.clone();
    let subscriber = identity_shared::logging::subscriber(
        identity_shared::logging::Format::Json,
        "trace",
        move || writer.clone(),
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let router = identity_cli::router(state);
    let form = "email=log%40example.com&password=Sup3rSecretPassw0rd&client_secret=cs_9f8e7d";
    for (method, path) in [("POST", "/logout"), ("GET", "/session"), ("POST", "/login")] {
        let req = Request::builder()
            .method(method)
            .uri(format!("{path}?code=query-code-secret"))
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-request-id", "trace-me-1")
            .body(Body::from(form))
            .unwrap();
        let _ = router.clone().oneshot(req).await.unwrap();
    }
    drop(_guard);
    let logs = String::from_utf8(captured.contents()).unwrap();
    assert!(
        logs.contains("answered"),
        "the access log line is there: {logs}"
    );
    for secret in [
        cookie_secret.as_str(),
        "Sup3rSecretPassw0rd",
        "cs_9f8e7d",
        "query-code-secret",
    ] {
        assert!(
            !logs.contains(secret),
            "secret {secret:?} leaked into logs:\n{logs}"
        );
    }
    for line in logs.lines().filter(|l| l.contains("answered")) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["span"]["request_id"], "trace-me-1", "{line}");
    }
}
