//! The Lambda start-up path from environment variables alone: DynamoDB store and Secrets
//! Manager keys, endpoints from the SDK's usual settings (`AWS_ENDPOINT_URL_*`). One test
//! per binary, because it sets process environment.

use identity_shared::secrets::{SecretKind, generate};
use identity_shared::store::dynamodb::DynamoDb;
use serde_json::json;

#[tokio::test]
async fn lambda_state_builds_from_environment_and_warms_keys() {
    let (Some(ddb), Some(sm)) = (
        identity_tests::dynamodb_endpoint_or_skip(),
        identity_tests::secretsmanager_endpoint(),
    ) else {
        return;
    };
    let prefix = format!("l{}-", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let sm_client =
        aws_sdk_secretsmanager::Client::new(&identity_tests::local_sdk_config(&sm).await);
    sm_client
        .create_secret()
        .name(format!("{prefix}cookie"))
        .secret_string(json!({ "current": generate(SecretKind::Cookie).unwrap() }).to_string())
        .send()
        .await
        .unwrap();
    // SAFETY: this binary has this one test; nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &ddb);
        std::env::set_var("AWS_ENDPOINT_URL_SECRETS_MANAGER", &sm);
        std::env::set_var("IDENTITY_STORE", "dynamodb:");
        std::env::set_var("IDENTITY_TABLE_PREFIX", &prefix);
        std::env::set_var("IDENTITY_SECRETS", format!("secretsmanager:{prefix}"));
        std::env::set_var("IDENTITY_BASE_URL", "https://id.example.com");
    }
    DynamoDb::from_env(prefix.clone())
        .await
        .create_tables()
        .await
        .unwrap();
    let state = identity_shared::AppState::for_lambda(&[SecretKind::Cookie])
        .await
        .expect("state from environment");
    assert_eq!(state.store.backend_name(), "dynamodb");
    assert_eq!(state.secrets.source_name(), "secretsmanager");
    assert!(state.config.secure_cookies());
    // A missing secret is a start-up failure, not a silent fallback.
    unsafe {
        std::env::set_var(
            "IDENTITY_SECRETS",
            format!("secretsmanager:{prefix}missing-"),
        )
    };
    assert!(
        identity_shared::AppState::for_lambda(&[SecretKind::Cookie])
            .await
            .is_err()
    );
}
