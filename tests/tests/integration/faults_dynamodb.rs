//! Faults between the service and DynamoDB (issue 19): DynamoDB Local behind a loopback proxy
//! that resets connections, loses answers and holds them (`identity_tests::proxy`), with the
//! store's real client: the AWS SDK with the service's own timeouts and retries
//! (`identity_shared::aws`). A retried write that had already happened must not be judged a
//! second use; an outage is a clean 503 within the function's time, and the service resumes
//! when DynamoDB does.

use std::time::{Duration, Instant};

use crate::oauth_common::*;
use http::StatusCode;
use identity_shared::store::{SingleUse, Store};
use identity_tests::proxy::{Cut, Proxy, WRITE};

use identity_tests::proxy::proxied_store as proxied;

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

/// The cuts a retried request must survive: the request never arrived, or it was done and
/// its answer lost.
const CUTS: [Cut; 2] = [Cut::Reset, Cut::AnswerLost];

/// Runs `change` once to warm up (records made the first time only, such as the grant),
/// once to count its write requests, then once per write and per cut with that write cut:
/// each run must succeed, exactly once (`check` looks at the store after it).
async fn at_each_write<T>(
    proxy: &Proxy,
    mut change: impl AsyncFnMut() -> T,
    mut check: impl AsyncFnMut(&str, T),
) {
    let first = change().await;
    check("first run", first).await;
    let before = proxy.writes();
    let baseline = change().await;
    let writes = proxy.writes() - before;
    check("no cut", baseline).await;
    assert!(writes >= 1, "the change writes");
    for step in 0..writes {
        for cut in CUTS {
            let what = format!("{cut:?} at write {step} of {writes}");
            proxy.plan_after(WRITE, step, cut);
            let fired = proxy.fired();
            let outcome = change().await;
            assert_eq!(proxy.fired(), fired + 1, "{what}: the cut happened");
            check(&what, outcome).await;
        }
    }
}

/// A code exchange whose write meets a reset or a lost answer still issues its tokens, and
/// the code is spent (its second use is refused).
#[tokio::test]
async fn a_code_exchange_survives_a_cut_at_each_write() {
    let Some((store, proxy, _clock)) = proxied().await else {
        return;
    };
    let env = env_on(store).await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "cut@example.com").await;
    at_each_write(
        &proxy,
        // The code's issue (authorize) and its exchange: each write of both is cut in turn.
        async || {
            let code = code_for(&env, &c, &cookie).await;
            (code.clone(), exchange(&env.router, &c, &code).await)
        },
        async |what: &str, (code, a): (String, Answer)| {
            assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.json);
            let refresh = a.json["refresh_token"].as_str().unwrap();
            assert_eq!(
                introspect(&env.router, &c, refresh).await["active"],
                true,
                "{what}"
            );
            let again = exchange(&env.router, &c, &code).await;
            assert_oauth_error(&again, StatusCode::BAD_REQUEST, "invalid_grant");
        },
    )
    .await;
}

/// A refresh rotation whose write meets a reset or a lost answer still rotates once: the
/// successor is live, the presented token spent.
#[tokio::test]
async fn a_refresh_rotation_survives_a_cut_at_each_write() {
    let Some((store, proxy, _clock)) = proxied().await else {
        return;
    };
    let env = env_on(store).await;
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "rotate@example.com").await;
    let code = code_for(&env, &c, &cookie).await;
    let first = exchange(&env.router, &c, &code).await;
    let current =
        std::cell::RefCell::new(first.json["refresh_token"].as_str().unwrap().to_string());
    at_each_write(
        &proxy,
        async || {
            let presented = current.borrow().clone();
            (
                presented.clone(),
                refresh(&env.router, &c, &presented).await,
            )
        },
        async |what: &str, (presented, a): (String, Answer)| {
            assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.json);
            let next = a.json["refresh_token"].as_str().unwrap().to_string();
            assert_eq!(
                introspect(&env.router, &c, &next).await["active"],
                true,
                "{what}"
            );
            assert_eq!(
                introspect(&env.router, &c, &presented).await["active"],
                false,
                "{what}"
            );
            *current.borrow_mut() = next;
        },
    )
    .await;
}

/// A device poll of an approved request whose write meets a reset or a lost answer still
/// gives the tokens, once.
#[tokio::test]
async fn an_approved_device_poll_survives_a_cut_at_each_write() {
    use crate::faults_oauth::{account_id, approved_device_code, poll};
    let Some((store, proxy, _clock)) = proxied().await else {
        return;
    };
    let env = env_on(store).await;
    let c = register(&env.state, false, true, &["identity"]).await;
    let account = account_id(&env, "device.cut@example.com").await;
    at_each_write(
        &proxy,
        async || {
            let code = approved_device_code(&env, &c, &account).await;
            (code.clone(), poll(&env, &c, &code).await)
        },
        async |what: &str, (code, a): (String, Answer)| {
            assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.json);
            let again = poll(&env, &c, &code).await;
            assert_ne!(again.status, StatusCode::OK, "{what}: tokens twice");
        },
    )
    .await;
}
