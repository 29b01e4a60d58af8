//! Secrets Manager failing, and keys rotating under traffic (issue 19, point 2), against moto:
//! a warm process keeps serving with the keys it holds until its deadline (three refresh
//! intervals), then fails closed; a cold start without keys fails closed with a clean 503;
//! rotating the signing and cookie keys while requests flow fails none of them, and what was
//! made with the previous keys keeps working.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::oauth_common::*;
use http::StatusCode;
use identity_shared::accounts::AccountStatus;
use identity_shared::secrets::rotation::Rotation;
use identity_shared::secrets::secretsmanager::SecretsManager;
use identity_shared::secrets::{SecretKind, Secrets, generate};
use identity_tests::proxy::Proxy;
use serde_json::json;

fn prefix() -> String {
    format!("o{}/", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Signing and cookie secrets under a fresh prefix; the direct client and the prefix.
async fn secrets_in_moto() -> Option<(aws_sdk_secretsmanager::Client, String)> {
    let client = identity_tests::secretsmanager_client().await?;
    let prefix = prefix();
    for kind in [SecretKind::Signing, SecretKind::Cookie] {
        identity_tests::create_secret(
            &client,
            &format!("{prefix}{}", kind.name()),
            &json!({ "current": generate(kind).unwrap() }),
        )
        .await;
    }
    Some((client, prefix))
}

/// Keys read through a proxy in front of moto, with the service's SDK settings.
async fn proxied_secrets(prefix: &str, refresh: Duration) -> (Secrets, Proxy) {
    let endpoint = identity_tests::secretsmanager_endpoint().expect("moto");
    let proxy = Proxy::start(&endpoint).await;
    let sdk = identity_tests::service_sdk_config(&proxy.endpoint).await;
    let source = SecretsManager::new(aws_sdk_secretsmanager::Client::new(&sdk), prefix.into());
    (Secrets::new(Arc::new(source), refresh), proxy)
}

#[tokio::test]
async fn a_warm_process_keeps_its_keys_through_an_outage_until_its_deadline_then_fails_closed() {
    let Some((_client, prefix)) = secrets_in_moto().await else {
        return;
    };
    let refresh = Duration::from_secs(1);
    let (keys, proxy) = proxied_secrets(&prefix, refresh).await;
    let fetched = Instant::now();
    let held = keys.signing_keys().await.unwrap();
    keys.cookie_keys().await.unwrap();

    proxy.down();
    tokio::time::sleep(refresh + Duration::from_millis(200)).await;
    let during = keys
        .signing_keys()
        .await
        .expect("held keys serve past a failed refresh");
    assert_eq!(during.current.kid, held.current.kid);
    keys.cookie_keys().await.expect("held cookie keys too");

    let deadline = refresh * 3;
    tokio::time::sleep((deadline + Duration::from_millis(300)).saturating_sub(fetched.elapsed()))
        .await;
    assert!(
        keys.signing_keys().await.is_err(),
        "past the deadline: closed"
    );
    assert!(
        keys.cookie_keys().await.is_err(),
        "past the deadline: closed"
    );

    proxy.up();
    assert_eq!(
        keys.signing_keys().await.unwrap().current.kid,
        held.current.kid,
        "back once Secrets Manager is"
    );
}

#[tokio::test]
async fn a_cold_start_during_an_outage_fails_closed_with_a_clean_503() {
    let Some((_client, prefix)) = secrets_in_moto().await else {
        return;
    };
    let (keys, proxy) = proxied_secrets(&prefix, Duration::from_secs(300)).await;
    let mut env = env().await;
    let c = register(&env.state, true, false, &["identity"]).await;
    env.state.secrets = Arc::new(keys);
    env.router = identity_cli::router(env.state.clone());
    proxy.down();
    let a = client_credentials(&env.router, &c).await;
    assert_oauth_error(
        &a,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    );
    proxy.up();
    let a = client_credentials(&env.router, &c).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
}

#[tokio::test]
async fn rotating_the_signing_and_cookie_keys_under_traffic_fails_no_request() {
    let Some((client, prefix)) = secrets_in_moto().await else {
        return;
    };
    let mut env = env().await;
    // Refreshed every 50 ms: the new keys reach the process while requests are in flight.
    let keys = Secrets::new(
        Arc::new(SecretsManager::new(client.clone(), prefix.clone())),
        Duration::from_millis(50),
    );
    env.state.secrets = Arc::new(keys);
    env.router = identity_cli::router(env.state.clone());
    let c = register(&env.state, true, false, &["identity"]).await;
    let cookie =
        identity_tests::signed_in_cookie(&env.state, "traffic@example.com", AccountStatus::Active)
            .await;
    let token_request = |router: axum::Router, id: String, secret: String| async move {
        call(
            &router,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Auth::Basic(&id, &secret),
        )
        .await
    };
    let (id, secret) = (c.id.clone(), c.secret.clone().unwrap());
    let before = token_request(env.router.clone(), id.clone(), secret.clone()).await;
    assert_eq!(before.status, StatusCode::OK);
    let old_token = before.json["access_token"].as_str().unwrap().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let (requests, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut traffic = Vec::new();
    for _ in 0..8 {
        let (router, stop, requests, failures) = (
            env.router.clone(),
            stop.clone(),
            requests.clone(),
            failures.clone(),
        );
        let (id, secret, cookie, old_token) = (
            id.clone(),
            secret.clone(),
            cookie.clone(),
            old_token.clone(),
        );
        traffic.push(tokio::spawn(async move {
            // Bounded: at most 2 000 rounds, whatever happens to the stop flag.
            for _ in 0..2000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let fresh = token_request(router.clone(), id.clone(), secret.clone()).await;
                let old = call(
                    &router,
                    "/oauth/introspect",
                    &[("token", &old_token)],
                    Auth::Basic(&id, &secret),
                )
                .await;
                let session = get(&router, "/session", Some(&cookie)).await;
                requests.fetch_add(3, Ordering::SeqCst);
                let ok = fresh.status == StatusCode::OK
                    && old.status == StatusCode::OK
                    && old.json["active"] == true
                    && session.status() == StatusCode::OK;
                if !ok {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    let rotation = Rotation::new(client.clone(), prefix.clone(), Duration::from_millis(50));
    let now = env.state.now();
    rotation.rotate(SecretKind::Signing, now).await.unwrap();
    rotation.rotate(SecretKind::Cookie, now).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for t in traffic {
        t.await.unwrap();
    }
    assert!(requests.load(Ordering::SeqCst) > 24, "traffic flowed");
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "a request failed during the rotation"
    );

    // After it: the old token still introspects active, the old cookie still signs in, and
    // new tokens carry the new key.
    let after = token_request(env.router.clone(), id.clone(), secret.clone()).await;
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid;
    assert_ne!(
        kid(after.json["access_token"].as_str().unwrap()),
        kid(&old_token)
    );
    let old = call(
        &env.router,
        "/oauth/introspect",
        &[("token", &old_token)],
        Auth::Basic(&id, &secret),
    )
    .await;
    assert_eq!(old.json["active"], true);
    assert_eq!(
        get(&env.router, "/session", Some(&cookie)).await.status(),
        StatusCode::OK
    );
}
