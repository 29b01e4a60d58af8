//! The AWS Secrets Manager source: secret `{prefix}{kind}` (for example `identity/cookie`),
//! always its `AWSCURRENT` version.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

use super::{SecretKind, SecretSource, SecretsError};
use crate::secret::SecretString;

pub struct SecretsManager {
    client: Client,
    prefix: String,
}

impl SecretsManager {
    pub fn new(client: Client, prefix: String) -> Self {
        Self { client, prefix }
    }

    pub fn secret_id(&self, kind: SecretKind) -> String {
        format!("{}{}", self.prefix, kind.name())
    }
}

#[async_trait]
impl SecretSource for SecretsManager {
    fn name(&self) -> &'static str {
        "secretsmanager"
    }

    async fn fetch(&self, kind: SecretKind) -> Result<SecretString, SecretsError> {
        let id = self.secret_id(kind);
        let out = self
            .client
            .get_secret_value()
            .secret_id(&id)
            // Ask for the current stage explicitly: some implementations answer with an older
            // version after a stage change otherwise.
            .version_stage("AWSCURRENT")
            .send()
            .await
            .map_err(|e| {
                let detail = e
                    .as_service_error()
                    .and_then(|s| s.code())
                    .unwrap_or("request failed");
                SecretsError::Unavailable(format!("GetSecretValue {id}: {detail}"))
            })?;
        out.secret_string()
            .map(SecretString::new)
            .ok_or_else(|| SecretsError::Invalid {
                kind: kind.name(),
                reason: "the secret has no string value".into(),
            })
    }
}
