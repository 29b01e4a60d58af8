//! The logging rule for the JWT grant, in a binary of its own (tracing's callsite cache is
//! process-wide): at TRACE, for every target, neither the assertion, nor the issued access
//! token, nor the named authorization's credentials reach the logs, on success or refusal.

use axum::body::Body;
use http::{Request, header};
use identity_tests::jwt_suite::{Harness, shared_ec};
use jwt_grant::grant;
use tower::ServiceExt;

#[tokio::test(flavor = "current_thread")]
async fn assertions_and_tokens_never_reach_the_logs() {
    let h = Harness::new(shared_ec()).await;
    let captured = identity_tests::CapturedLogs::default();
    let writer = captured.clone();
    let subscriber = identity_shared::logging::subscriber(
        identity_shared::logging::Format::Json,
        "trace",
        move || writer.clone(),
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let good = h.assertion();
    let granted = h.granted(&good).await;
    let token = granted["access_token"].as_str().unwrap().to_string();
    // Refused: replayed, and one with a bad signature.
    h.token(&good).await;
    let (input, _) = good.rsplit_once('.').unwrap();
    let forged = format!("{input}.c2lnbmF0dXJlLWJ5dGVz");
    h.token(&forged).await;
    // The token, presented as a bearer token.
    let _ = h
        .router
        .clone()
        .oneshot(
            Request::get("/apps/none/authorizations/org_jwt")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    drop(_guard);

    let logs = String::from_utf8(captured.contents()).unwrap();
    assert!(
        logs.contains("jwt bearer grant"),
        "the grant's log line is there: {logs}"
    );
    assert!(
        logs.contains(grant::TOKEN_PATH),
        "the access line names the route"
    );
    let signature = good.rsplit_once('.').unwrap().1;
    let payload = good.split('.').nth(1).unwrap();
    for secret in [
        good.as_str(),
        signature,
        payload,
        token.as_str(),
        "c2lnbmF0dXJlLWJ5dGVz",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} leaked into the logs:\n{logs}"
        );
    }
    let token_signature = token.rsplit_once('.').unwrap().1;
    assert!(!logs.contains(token_signature));
}
