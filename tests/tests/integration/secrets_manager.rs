//! The Secrets Manager source against moto: typed keys, caching with a bounded refresh,
//! rotation picked up without a restart, previous keys still accepted, failing closed.

use std::sync::Arc;
use std::time::Duration;

use identity_shared::secrets::secretsmanager::SecretsManager;
use identity_shared::secrets::{SecretKind, Secrets, SecretsError, generate};
use identity_shared::session::SessionId;
use serde_json::json;

fn prefix() -> String {
    format!("t{}/", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

async fn put(client: &aws_sdk_secretsmanager::Client, id: &str, doc: &serde_json::Value) {
    client
        .put_secret_value()
        .secret_id(id)
        .secret_string(doc.to_string())
        .send()
        .await
        .expect("put secret value");
}

#[tokio::test]
async fn rotation_is_picked_up_after_refresh_and_previous_key_still_opens() {
    let Some(client) = identity_tests::secretsmanager_client().await else {
        return;
    };
    let prefix = prefix();
    let old = generate(SecretKind::Cookie).unwrap();
    identity_tests::create_secret(
        &client,
        &format!("{prefix}cookie"),
        &json!({ "current": old }),
    )
    .await;
    let secrets = Secrets::new(
        Arc::new(SecretsManager::new(client.clone(), prefix.clone())),
        Duration::from_secs(1),
    );

    let id = SessionId::new_random();
    let sealed_before = id.seal(&secrets.cookie_keys().await.unwrap());

    let new = generate(SecretKind::Cookie).unwrap();
    put(
        &client,
        &format!("{prefix}cookie"),
        &json!({ "current": new, "previous": old }),
    )
    .await;
    // Still cached: the old key is current until the refresh interval passes.
    let cached = secrets.cookie_keys().await.unwrap();
    assert!(SessionId::open(&cached, &sealed_before).is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = secrets.cookie_keys().await.unwrap();
    assert!(
        SessionId::open(&fresh, &sealed_before).is_some(),
        "previous key still opens"
    );
    let sealed_after = id.seal(&fresh);
    let only_old = identity_shared::secrets::CookieKeys::parse(
        &identity_shared::secret::SecretString::new(json!({ "current": old }).to_string()),
    )
    .unwrap();
    assert!(
        SessionId::open(&only_old, &sealed_after).is_none(),
        "new cookies are sealed with the new key"
    );
}

#[tokio::test]
async fn signing_keys_come_typed_with_both_kids() {
    let Some(client) = identity_tests::secretsmanager_client().await else {
        return;
    };
    let prefix = prefix();
    let doc = json!({
        "current": { "kid": "k2", "private_key_pem": generate(SecretKind::Signing).unwrap()["private_key_pem"] },
        "previous": { "kid": "k1", "private_key_pem": generate(SecretKind::Signing).unwrap()["private_key_pem"] },
    });
    identity_tests::create_secret(&client, &format!("{prefix}signing"), &doc).await;
    let secrets = Secrets::new(
        Arc::new(SecretsManager::new(client, prefix)),
        Duration::from_secs(60),
    );
    let keys = secrets.signing_keys().await.unwrap();
    assert_eq!(keys.current.kid, "k2");
    let kids: Vec<_> = keys.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, vec![json!("k2"), json!("k1")]);
}

#[tokio::test]
async fn saml_sp_key_and_certificate_load() {
    let Some(client) = identity_tests::secretsmanager_client().await else {
        return;
    };
    let prefix = prefix();
    identity_tests::create_secret(
        &client,
        &format!("{prefix}saml-sp"),
        &json!({ "current": generate(SecretKind::SamlSp).unwrap() }),
    )
    .await;
    let secrets = Secrets::new(
        Arc::new(SecretsManager::new(client, prefix)),
        Duration::from_secs(60),
    );
    let keys = secrets.saml_sp_keys().await.unwrap();
    assert!(keys.current.certificate_pem.contains("CERTIFICATE"));
}

#[tokio::test]
async fn missing_or_malformed_secret_fails_closed() {
    let Some(client) = identity_tests::secretsmanager_client().await else {
        return;
    };
    let prefix = prefix();
    let secrets = Secrets::new(
        Arc::new(SecretsManager::new(client.clone(), prefix.clone())),
        Duration::from_secs(60),
    );
    assert!(
        matches!(
            secrets.cookie_keys().await,
            Err(SecretsError::Unavailable(_))
        ),
        "missing secret"
    );
    identity_tests::create_secret(
        &client,
        &format!("{prefix}signing"),
        &json!({ "current": { "private_key_pem": "SECRET-NOT-A-KEY" } }),
    )
    .await;
    let err = secrets.signing_keys().await.unwrap_err();
    assert!(matches!(err, SecretsError::Invalid { .. }));
    assert!(!err.to_string().contains("SECRET-NOT-A-KEY"));
}
