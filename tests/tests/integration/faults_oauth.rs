//! Store faults in the middle of the token endpoint's multi-record changes (issue 19): every
//! mutating store call of a code exchange and of a refresh rotation is failed in turn, each
//! way the store can fail ([`Fault`]), through `identity serve`'s router on the embedded store
//! and on DynamoDB Local, each behind the fault-injecting backend. Each time the answer is a success or a clean 503
//! `temporarily_unavailable`, and the store holds either the state before the request or the
//! state after it; from the state before, the same request succeeds once the store is back.

use std::sync::Arc;

use crate::oauth_common::*;
use http::StatusCode;
use identity_shared::oauth::AuthCodes;
use identity_shared::store::{Backend, Store, Table};
use identity_tests::faults::{Fault, Faulty};

/// `env()` with the store behind a [`Faulty`] backend: the embedded store, or `backend`
/// (DynamoDB Local's).
async fn faulty_env(backend: Option<Arc<dyn Backend>>) -> (Env, Arc<Faulty>) {
    let mut env = env().await;
    let inner = backend.unwrap_or_else(|| env.state.store.backend().clone());
    let faulty = Arc::new(Faulty::new(inner));
    env.state.store = Store::new(faulty.clone(), env.state.store.clock().clone());
    env.router = identity_cli::router(env.state.clone());
    (env, faulty)
}

/// Each check on the embedded store and on fresh DynamoDB Local tables, both behind the
/// fault-injecting backend.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $check() {
                    let (env, faulty) = super::faulty_env(None).await;
                    super::$check(env, faulty).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $check() {
                    let Some(f) = identity_tests::dynamodb().await else { return };
                    let (env, faulty) = super::faulty_env(Some(f.store.backend().clone())).await;
                    super::$check(env, faulty).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_code_exchange_leaves_the_code_unspent_without_tokens_or_spent_with_them,
    a_refresh_rotation_leaves_the_old_token_or_its_successor,
    a_device_poll_leaves_the_approval_unspent_without_tokens_or_spent_with_them,
);

/// Live records of the OAuth table whose key starts with `prefix`.
async fn count(env: &Env, prefix: &str) -> usize {
    env.state
        .store
        .backend()
        .scan(Table::OAuth, env.state.now())
        .await
        .unwrap()
        .iter()
        .filter(|i| i.pk.starts_with(prefix))
        .count()
}

fn assert_success_or_clean_503(a: &Answer, what: &str) {
    if a.status != StatusCode::OK {
        assert_oauth_error(
            a,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        );
        let said = a.json.to_string();
        assert!(
            !said.contains("injected"),
            "{what}: internals leaked: {said}"
        );
    }
}

async fn a_code_exchange_leaves_the_code_unspent_without_tokens_or_spent_with_them(
    env: Env,
    faulty: Arc<Faulty>,
) {
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "faults@example.com").await;

    // Once without faults: how many mutating calls an exchange makes.
    let code = code_for(&env, &c, &cookie).await;
    faulty.reset();
    assert_eq!(
        exchange(&env.router, &c, &code).await.status,
        StatusCode::OK
    );
    let steps = faulty.mutations();
    assert!(steps >= 1, "an exchange writes");

    for step in 0..steps {
        for fault in Fault::ALL {
            let what = format!("fault {fault:?} at mutating call {step} of {steps}");
            let code = code_for(&env, &c, &cookie).await;
            let (refresh_before, spent_before) =
                (count(&env, "refresh#").await, count(&env, "code#").await);
            faulty.fail_mutation(step, fault);
            let a = exchange(&env.router, &c, &code).await;
            faulty.reset();
            assert_success_or_clean_503(&a, &what);
            let live = env.state.store.live_code(&code).await.unwrap().is_some();
            let (refresh_after, spent_after) =
                (count(&env, "refresh#").await, count(&env, "code#").await);
            if live {
                // The state before: nothing was issued; the client may simply try again.
                assert_ne!(
                    a.status,
                    StatusCode::OK,
                    "{what}: success without spending the code"
                );
                assert_eq!(
                    refresh_after, refresh_before,
                    "{what}: tokens for an unspent code"
                );
                assert_eq!(spent_after, spent_before, "{what}");
                let again = exchange(&env.router, &c, &code).await;
                assert_eq!(again.status, StatusCode::OK, "{what}: {}", again.json);
            } else {
                // The state after: the code is spent together with its refresh token.
                assert_eq!(
                    refresh_after,
                    refresh_before + 1,
                    "{what}: spent without tokens"
                );
                assert_eq!(spent_after, spent_before + 1, "{what}");
                if a.status == StatusCode::OK {
                    let token = a.json["refresh_token"].as_str().unwrap();
                    assert_eq!(introspect(&env.router, &c, token).await["active"], true);
                }
            }
        }
    }
}

/// A refresh token from a code exchange that went through.
async fn fresh_refresh(env: &Env, c: &TestClient, cookie: &str) -> String {
    let code = code_for(env, c, cookie).await;
    let a = exchange(&env.router, c, &code).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    a.json["refresh_token"].as_str().unwrap().to_string()
}

async fn a_refresh_rotation_leaves_the_old_token_or_its_successor(env: Env, faulty: Arc<Faulty>) {
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie = cookie(&env.state, "rotate@example.com").await;
    let token = fresh_refresh(&env, &c, &cookie).await;
    faulty.reset();
    assert_eq!(
        refresh(&env.router, &c, &token).await.status,
        StatusCode::OK
    );
    let steps = faulty.mutations();
    assert!(steps >= 1, "a rotation writes");

    for step in 0..steps {
        for fault in Fault::ALL {
            let what = format!("fault {fault:?} at mutating call {step} of {steps}");
            let token = fresh_refresh(&env, &c, &cookie).await;
            let before = count(&env, "refresh#").await;
            faulty.fail_mutation(step, fault);
            let a = refresh(&env.router, &c, &token).await;
            faulty.reset();
            assert_success_or_clean_503(&a, &what);
            let old_active = introspect(&env.router, &c, &token).await["active"] == true;
            let after = count(&env, "refresh#").await;
            if old_active {
                // Before: no successor exists, and the old token still rotates.
                assert_ne!(a.status, StatusCode::OK, "{what}");
                assert_eq!(after, before, "{what}: a successor beside a live token");
                let again = refresh(&env.router, &c, &token).await;
                assert_eq!(again.status, StatusCode::OK, "{what}: {}", again.json);
            } else {
                // After: the old token is spent and exactly one successor exists.
                assert_eq!(after, before + 1, "{what}");
                if a.status == StatusCode::OK {
                    let next = a.json["refresh_token"].as_str().unwrap();
                    assert_eq!(introspect(&env.router, &c, next).await["active"], true);
                }
            }
        }
    }
}

/// The id of a new active account.
pub(crate) async fn account_id(env: &Env, email: &str) -> String {
    use identity_shared::accounts::{AccountStatus, Accounts, Email};
    env.state
        .store
        .create_account(&Email::parse(email).unwrap(), None, AccountStatus::Active)
        .await
        .unwrap()
        .id
        .to_string()
}

/// A device code its person has approved (RFC 8628), for `c`, on a live grant.
pub(crate) async fn approved_device_code(env: &Env, c: &TestClient, account_id: &str) -> String {
    use identity_shared::oauth::device::{DeviceRequests, DeviceState};
    use identity_shared::oauth::{Grants, Scopes};
    let store = &env.state.store;
    let grant = store
        .grant_for(account_id, &c.id, &Scopes::parse("identity").unwrap())
        .await
        .unwrap();
    let (code, request) = store
        .start_device_request(&c.id, "identity", None)
        .await
        .unwrap();
    let found = store
        .device_request_by_user_code(&request.user_code)
        .await
        .unwrap()
        .unwrap();
    let approved = DeviceState::Approved {
        account_id: account_id.into(),
        gid: grant.gid.clone(),
    };
    assert!(store.answer_device_request(&found, approved).await.unwrap());
    code.expose_secret().to_string()
}

pub(crate) async fn poll(env: &Env, c: &TestClient, device_code: &str) -> Answer {
    call(
        &env.router,
        "/oauth/token",
        &[
            ("grant_type", identity_shared::oauth::device::GRANT_TYPE),
            ("device_code", device_code),
        ],
        Auth::of(c),
    )
    .await
}

async fn a_device_poll_leaves_the_approval_unspent_without_tokens_or_spent_with_them(
    env: Env,
    faulty: Arc<Faulty>,
) {
    let c = register(&env.state, false, true, &["identity"]).await;
    let account = account_id(&env, "device@example.com").await;

    let code = approved_device_code(&env, &c, &account).await;
    faulty.reset();
    assert_eq!(poll(&env, &c, &code).await.status, StatusCode::OK);
    let steps = faulty.mutations();
    assert!(steps >= 1, "a successful poll writes");

    for step in 0..steps {
        for fault in Fault::ALL {
            let what = format!("fault {fault:?} at mutating call {step} of {steps}");
            let code = approved_device_code(&env, &c, &account).await;
            let (refresh_before, pending_before) =
                (count(&env, "refresh#").await, count(&env, "device#").await);
            faulty.fail_mutation(step, fault);
            let a = poll(&env, &c, &code).await;
            faulty.reset();
            assert_success_or_clean_503(&a, &what);
            let (refresh_after, pending_after) =
                (count(&env, "refresh#").await, count(&env, "device#").await);
            if pending_after == pending_before {
                // Before: the approval still stands and no tokens exist; polling again works.
                assert_ne!(a.status, StatusCode::OK, "{what}");
                assert_eq!(
                    refresh_after, refresh_before,
                    "{what}: tokens beside the approval"
                );
                let again = poll(&env, &c, &code).await;
                assert_eq!(again.status, StatusCode::OK, "{what}: {}", again.json);
            } else {
                // After: the approval is spent with exactly one refresh token.
                assert_eq!(pending_after + 1, pending_before, "{what}");
                assert_eq!(
                    refresh_after,
                    refresh_before + 1,
                    "{what}: spent without tokens"
                );
            }
        }
    }
}
