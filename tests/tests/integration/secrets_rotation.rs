//! Rotation of the keys in Secrets Manager (shared/src/secrets/rotation.rs), against moto:
//! the four steps of the rotation protocol, a second rotation right after the first (it
//! loses nothing), and tokens and cookies made before a rotation still accepted after it.

use std::time::Duration;

use identity_shared::secrets::rotation::{Rotation, RotationError, Step};
use identity_shared::secrets::{SecretKind, generate};
use identity_shared::session::SessionId;
use identity_shared::tokens::{self, AccessClaims};
use identity_tests::real_now;
use serde_json::{Value, json};

const ISS: &str = "https://id.example.com";
const REFRESH: Duration = Duration::from_secs(300);

fn prefix() -> String {
    format!("r{}/", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

async fn current(client: &aws_sdk_secretsmanager::Client, id: &str) -> Value {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .expect("get secret value");
    serde_json::from_str(out.secret_string().unwrap()).unwrap()
}

async fn versions(client: &aws_sdk_secretsmanager::Client, id: &str) -> Vec<(String, Vec<String>)> {
    client
        .list_secret_version_ids()
        .secret_id(id)
        .send()
        .await
        .expect("list versions")
        .versions()
        .iter()
        .map(|v| {
            (
                v.version_id().unwrap_or_default().to_string(),
                v.version_stages().to_vec(),
            )
        })
        .collect()
}

/// Whether a version of `id` is still staged `AWSPENDING`.
async fn pending_left(client: &aws_sdk_secretsmanager::Client, id: &str) -> bool {
    versions(client, id)
        .await
        .iter()
        .any(|(_, stages)| stages.iter().any(|s| s == "AWSPENDING"))
}

#[tokio::test]
async fn the_four_steps_make_a_new_current_key_and_keep_the_old_one_as_previous() {
    let Some(client) = identity_tests::secretsmanager_client().await else {
        return;
    };
    let prefix = prefix();
    let id = format!("{prefix}signing");
    let old = generate(SecretKind::Signing).unwrap();
    identity_tests::create_secret(&client, &id, &json!({ "current": old })).await;
    let rotation = Rotation::new(client.clone(), prefix.clone(), REFRESH);
    assert_eq!(rotation.kind_of(&id).await.unwrap(), SecretKind::Signing);

    let token = uuid::Uuid::new_v4().to_string();
    let now = real_now();
    for step in Step::ALL {
        rotation
            .step(&id, SecretKind::Signing, &token, step, now)
            .await
            .unwrap_or_else(|e| panic!("{step:?}: {e}"));
        // Every step may run again (Secrets Manager retries): nothing changes.
        rotation
            .step(&id, SecretKind::Signing, &token, step, now)
            .await
            .unwrap_or_else(|e| panic!("{step:?} again: {e}"));
    }
    let doc = current(&client, &id).await;
    assert_eq!(doc["previous"], old, "the old key is kept as previous");
    assert_ne!(doc["current"], old, "a new key is current");
    let staged: Vec<_> = versions(&client, &id)
        .await
        .into_iter()
        .filter(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(v, _)| v)
        .collect();
    assert_eq!(staged, vec![token], "the rotation's version is current");
    assert!(
        !pending_left(&client, &id).await,
        "no version is left pending"
    );
}

#[tokio::test]
async fn a_second_rotation_right_after_the_first_is_refused_and_loses_nothing() {
    let Some(client) = identity_tests::secretsmanager_client().await else {
        return;
    };
    let prefix = prefix();
    let rotation = Rotation::new(client.clone(), prefix.clone(), REFRESH);
    for kind in SecretKind::ALL {
        let id = rotation.secret_id(kind);
        let first = generate(kind).unwrap();
        identity_tests::create_secret(&client, &id, &json!({ "current": first })).await;
        rotation.rotate(kind, real_now()).await.unwrap();
        let after_first = current(&client, &id).await;
        assert_eq!(after_first["previous"], first, "{kind:?}");

        let second = rotation.rotate(kind, real_now()).await;
        assert!(
            matches!(&second, Err(RotationError::Refused(m)) if m.contains("try again later")),
            "{kind:?}: {second:?}"
        );
        assert_eq!(
            current(&client, &id).await,
            after_first,
            "{kind:?}: both keys are still there"
        );
        assert!(
            !pending_left(&client, &id).await,
            "{kind:?}: nothing was left pending"
        );

        // Once the previous key can no longer be in use, the next rotation goes ahead.
        let later = real_now()
            + identity_shared::secrets::rotation::hold(kind, REFRESH).as_secs() as i64
            + 1;
        rotation.rotate(kind, later).await.unwrap();
        let after_second = current(&client, &id).await;
        assert_eq!(after_second["previous"], after_first["current"], "{kind:?}");
    }
}

#[tokio::test]
async fn tokens_and_cookies_made_before_a_rotation_keep_working_after_it() {
    let Some(client) = identity_tests::secretsmanager_client().await else {
        return;
    };
    let prefix = prefix();
    let rotation = Rotation::new(client.clone(), prefix.clone(), REFRESH);
    identity_tests::create_secret(
        &client,
        &rotation.secret_id(SecretKind::Signing),
        &json!({ "current": generate(SecretKind::Signing).unwrap() }),
    )
    .await;
    identity_tests::create_secret(
        &client,
        &rotation.secret_id(SecretKind::Cookie),
        &json!({ "current": generate(SecretKind::Cookie).unwrap() }),
    )
    .await;
    let keys = identity_tests::fresh_secrets(&client, &prefix);
    let now = real_now();
    let token = tokens::issue(
        &keys.signing_keys().await.unwrap(),
        &AccessClaims::new(ISS, "acct-1", "client-1", "read", None, now),
    )
    .unwrap();
    let session = SessionId::new_random();
    let sealed = session.seal(&keys.cookie_keys().await.unwrap());

    rotation.rotate(SecretKind::Signing, now).await.unwrap();
    rotation.rotate(SecretKind::Cookie, now).await.unwrap();

    let signing = keys.signing_keys().await.unwrap();
    assert!(
        tokens::verify(&signing, token.expose_secret(), ISS, now + 60).is_ok(),
        "a token signed before the rotation verifies after it"
    );
    let fresh = tokens::issue(
        &signing,
        &AccessClaims::new(ISS, "acct-1", "client-1", "read", None, now),
    )
    .unwrap();
    assert_ne!(
        jsonwebtoken::decode_header(fresh.expose_secret())
            .unwrap()
            .kid,
        jsonwebtoken::decode_header(token.expose_secret())
            .unwrap()
            .kid,
        "new tokens are signed with the new key"
    );
    assert_eq!(signing.jwks()["keys"].as_array().unwrap().len(), 2);
    let cookies = keys.cookie_keys().await.unwrap();
    let opened = SessionId::open(&cookies, &sealed)
        .expect("a cookie sealed before the rotation opens after it");
    assert_eq!(opened.derive("same"), session.derive("same"));
}

#[tokio::test]
async fn the_first_rotation_of_an_empty_secret_makes_its_key() {
    let Some(client) = identity_tests::secretsmanager_client().await else {
        return;
    };
    let prefix = prefix();
    let rotation = Rotation::new(client.clone(), prefix.clone(), REFRESH);
    // As template.yaml creates the signing and SAML SP secrets: "{}".
    for kind in [SecretKind::Signing, SecretKind::SamlSp] {
        identity_tests::create_secret(&client, &rotation.secret_id(kind), &json!({})).await;
        rotation.rotate(kind, real_now()).await.unwrap();
        let doc = current(&client, &rotation.secret_id(kind)).await;
        assert!(doc["current"].is_object(), "{kind:?}: {doc}");
        assert!(doc.get("previous").is_none(), "{kind:?}");
    }
    let keys = identity_tests::fresh_secrets(&client, &prefix);
    keys.signing_keys().await.expect("usable signing keys");
    keys.saml_sp_keys().await.expect("usable SAML SP keys");
}

#[tokio::test]
async fn a_pending_document_that_is_not_usable_is_never_made_current() {
    let Some(client) = identity_tests::secretsmanager_client().await else {
        return;
    };
    let prefix = prefix();
    let rotation = Rotation::new(client.clone(), prefix.clone(), REFRESH);
    let id = rotation.secret_id(SecretKind::Cookie);
    let before = json!({ "current": generate(SecretKind::Cookie).unwrap() });
    identity_tests::create_secret(&client, &id, &before).await;
    // Someone stages a broken document for this rotation's version.
    let token = uuid::Uuid::new_v4().to_string();
    client
        .put_secret_value()
        .secret_id(&id)
        .client_request_token(&token)
        .secret_string(json!({ "current": "short" }).to_string())
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    let now = real_now();
    rotation
        .step(&id, SecretKind::Cookie, &token, Step::Create, now)
        .await
        .unwrap();
    let test = rotation
        .step(&id, SecretKind::Cookie, &token, Step::Test, now)
        .await;
    assert!(matches!(test, Err(RotationError::Refused(_))), "{test:?}");
    assert_eq!(
        current(&client, &id).await,
        before,
        "the current key is untouched"
    );
    // And a secret that is not one of ours is refused by name.
    identity_tests::create_secret(&client, &format!("{prefix}other"), &json!({})).await;
    assert!(matches!(
        rotation.kind_of(&format!("{prefix}other")).await,
        Err(RotationError::Refused(_))
    ));
}
