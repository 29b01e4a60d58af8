//! Faults between the service and DynamoDB (issue 19): DynamoDB Local behind a loopback proxy
//! that resets connections, loses answers and holds them (`identity_tests::proxy`), with the
//! store's real client: the AWS SDK with the service's own timeouts and retries
//! (`identity_shared::aws`). A retried write that had already happened must not be judged a
//! second use; an outage is a clean 503 within the function's time, and the service resumes
//! when DynamoDB does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::oauth_common::*;
use http::StatusCode;
use identity_shared::clock::FixedClock;
use identity_shared::store::dynamodb::DynamoDb;
use identity_shared::store::{SingleUse, Store};
use identity_tests::proxy::{Cut, Proxy, WRITE};

/// A store on fresh DynamoDB Local tables, reached through a proxy; `None` when skipped.
async fn proxied() -> Option<(Store, Proxy, FixedClock)> {
    let endpoint = identity_tests::dynamodb_endpoint_or_skip()?;
    let proxy = Proxy::start(&endpoint).await;
    let sdk = identity_tests::service_sdk_config(&proxy.endpoint).await;
    let prefix = format!("f{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let db = DynamoDb::new(aws_sdk_dynamodb::Client::new(&sdk), prefix);
    db.create_tables().await.expect("tables");
    let clock = FixedClock::at(identity_tests::real_now());
    Some((
        Store::new(Arc::new(db), Arc::new(clock.clone())),
        proxy,
        clock,
    ))
}

#[tokio::test]
async fn a_first_use_whose_answer_was_lost_is_still_the_first_use() {
    let Some((store, proxy, _clock)) = proxied().await else {
        return;
    };
    let until = store.now() + 600;
    for cut in [
        Cut::Reset,
        Cut::AnswerLost,
        Cut::AnswerLate(Duration::from_millis(1500)),
    ] {
        let key = format!("{cut:?}");
        proxy.plan(WRITE, cut);
        let fired = proxy.fired();
        assert!(
            store.mark_used("fault-test", &key, until).await.unwrap(),
            "{cut:?}: the first use, retried by the SDK, was judged a replay"
        );
        assert_eq!(proxy.fired(), fired + 1, "{cut:?}: the fault happened");
        assert!(
            !store.mark_used("fault-test", &key, until).await.unwrap(),
            "{cut:?}: the second use is one"
        );
    }
}

#[tokio::test]
async fn a_take_whose_answer_was_lost_still_gives_the_value_once() {
    let Some((store, proxy, _clock)) = proxied().await else {
        return;
    };
    let until = store.now() + 600;
    for cut in [Cut::Reset, Cut::AnswerLost] {
        let key = format!("{cut:?}");
        let body = serde_json::json!({ "v": key });
        store
            .put_single_use("fault-take", &key, &body, until)
            .await
            .unwrap();
        proxy.plan(WRITE, cut);
        assert_eq!(
            store.take_single_use("fault-take", &key).await.unwrap(),
            Some(body),
            "{cut:?}"
        );
        assert_eq!(
            store.take_single_use("fault-take", &key).await.unwrap(),
            None
        );
    }
}

/// `identity serve`'s router on `store` (embedded secrets).
async fn env_on(store: Store) -> Env {
    let mut env = env().await;
    env.state.store = store;
    env.router = identity_cli::router(env.state.clone());
    env
}

#[tokio::test]
async fn a_code_exchange_whose_write_answer_was_lost_issues_its_tokens_once() {
    let Some((store, proxy, _clock)) = proxied().await else {
        return;
    };
    let env = env_on(store).await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "lost@example.com").await;
    let code = code_for(&env, &c, &cookie).await;
    proxy.plan("TransactWriteItems", Cut::AnswerLost);
    let a = exchange(&env.router, &c, &code).await;
    assert_eq!(proxy.fired(), 1);
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let refresh = a.json["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&env.router, &c, refresh).await["active"], true);
    // The code is spent: a second use is refused (and revokes what the first one issued).
    let again = exchange(&env.router, &c, &code).await;
    assert_oauth_error(&again, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn an_outage_is_a_clean_503_within_the_function_timeout_and_service_resumes() {
    let Some((store, proxy, _clock)) = proxied().await else {
        return;
    };
    let env = env_on(store).await;
    let c = register(&env.state, true, false, &["identity"]).await;
    assert_eq!(
        client_credentials(&env.router, &c).await.status,
        StatusCode::OK
    );

    proxy.down();
    let started = Instant::now();
    let a = client_credentials(&env.router, &c).await;
    let took = started.elapsed();
    assert_oauth_error(
        &a,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    );
    assert!(
        took < identity_shared::aws::FUNCTION_TIMEOUT,
        "answered after {took:?}, past the function's {:?}",
        identity_shared::aws::FUNCTION_TIMEOUT
    );

    proxy.up();
    assert_eq!(
        client_credentials(&env.router, &c).await.status,
        StatusCode::OK
    );
}
