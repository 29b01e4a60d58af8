//! Rotating a key kept in AWS Secrets Manager, in the four steps of Secrets Manager's
//! rotation protocol (`createSecret`, `setSecret`, `testSecret`, `finishSecret`): what a
//! rotation Lambda runs for each step, and what `identity admin keys rotate` runs in a row.
//!
//! The new document `{"current": NEW, "previous": OLD}` keeps the key it replaces, so tokens
//! signed, cookies sealed and SAML requests signed with it keep working. A rotation drops the
//! document's old `previous`, so it is refused while that key may still be in use: while the
//! current version is younger than the kind's hold time ([`hold`]: what was made with the
//! key stays valid, plus three refresh intervals, the longest a function keeps keys it
//! fetched). Two rotations in a row never lose a key in use: the second is refused, nothing
//! is written, and it can run again later (Secrets Manager retries a failed rotation).

use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use super::{SecretKind, generate, validate};
use crate::secret::SecretString;

pub const PENDING: &str = "AWSPENDING";
pub const CURRENT: &str = "AWSCURRENT";

/// One step of Secrets Manager's rotation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

    /// The protocol's name of a step (`createSecret`, …).
    pub fn parse(name: &str) -> Option<Step> {
        match name {
            "createSecret" => Some(Step::Create),
            "setSecret" => Some(Step::Set),
            "testSecret" => Some(Step::Test),
            "finishSecret" => Some(Step::Finish),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The rotation would lose a key in use, or the documents are not what they must be;
    /// nothing was changed.
    #[error("rotation refused: {0}")]
    Refused(String),
    #[error("Secrets Manager: {0}")]
    Unavailable(String),
}

/// How long a key stays needed after a newer one became current: what was made with it
/// stays valid (for the cookie key a session, and an outbox message, whose body it seals
/// for the message's whole life; an access token for the signing key; SAML requests are
/// checked when they arrive), plus three refresh intervals.
pub fn hold(kind: SecretKind, refresh: Duration) -> Duration {
    let made_with_it = match kind {
        SecretKind::Cookie => {
            crate::config::SESSION_LIFETIME_SECS.max(crate::config::OUTBOX_TTL_SECS)
        }
        SecretKind::Signing => crate::config::ACCESS_TOKEN_TTL,
        SecretKind::SamlSp => 0,
    };
    Duration::from_secs(made_with_it.max(0) as u64) + refresh * 3
}

fn unavailable<E: ProvideErrorMetadata>(call: &str, id: &str) -> impl FnOnce(E) -> RotationError {
    let (call, id) = (call.to_string(), id.to_string());
    move |e| {
        RotationError::Unavailable(format!(
            "{call} {id}: {}",
            e.code().unwrap_or("request failed")
        ))
    }
}

/// The event Secrets Manager sends the rotation function for each step.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    pub secret_id: String,
    pub client_request_token: String,
    pub step: String,
}

pub struct Rotation {
    client: Client,
    prefix: String,
    refresh: Duration,
}

impl Rotation {
    /// Rotates the secrets `{prefix}{kind}`; `refresh` is the functions'
    /// `IDENTITY_SECRETS_REFRESH_SECS`.
    pub fn new(client: Client, prefix: String, refresh: Duration) -> Self {
        Self {
            client,
            prefix,
            refresh,
        }
    }

    pub fn secret_id(&self, kind: SecretKind) -> String {
        format!("{}{}", self.prefix, kind.name())
    }

    /// The rotation of the deployment `config` names (its Secrets Manager prefix); an error
    /// when its secrets are not in Secrets Manager.
    pub async fn from_config(config: &crate::config::Config) -> Result<Self, String> {
        let crate::config::SecretsSpec::SecretsManager { prefix } = &config.secrets else {
            return Err("key-rotation needs IDENTITY_SECRETS=secretsmanager:PREFIX".into());
        };
        let client = Client::new(&crate::aws::sdk_config().await);
        Ok(Self::new(client, prefix.clone(), config.secrets_refresh))
    }

    /// One step, as Secrets Manager asks for it, logged (never a secret's value).
    pub async fn handle(&self, e: &RotationEvent, now: i64) -> Result<(), RotationError> {
        let step = Step::parse(&e.step)
            .ok_or_else(|| RotationError::Refused(format!("unknown rotation step {:?}", e.step)))?;
        let kind = self.kind_of(&e.secret_id).await?;
        let done = self
            .step(&e.secret_id, kind, &e.client_request_token, step, now)
            .await;
        match &done {
            Ok(()) => tracing::info!(secret = kind.name(), step = e.step, "rotation step done"),
            Err(err) => {
                let refused = matches!(err, RotationError::Refused(_));
                tracing::warn!(secret = kind.name(), step = e.step, refused, error = %err, "rotation step failed");
            }
        }
        done
    }

    /// The kind of the secret a rotation event names (its ARN or name): one of ours.
    pub async fn kind_of(&self, secret_id: &str) -> Result<SecretKind, RotationError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(unavailable("DescribeSecret", secret_id))?;
        let name = out.name().unwrap_or_default();
        name.strip_prefix(&self.prefix)
            .and_then(SecretKind::parse)
            .ok_or_else(|| {
                RotationError::Refused(format!(
                    "{name} is not one of this service's secrets ({}cookie, …signing, …saml-sp)",
                    self.prefix
                ))
            })
    }

    /// A whole rotation of `kind`, as `identity admin keys rotate` does it: the four steps
    /// with a new version id.
    pub async fn rotate(&self, kind: SecretKind, now: i64) -> Result<(), RotationError> {
        let id = self.secret_id(kind);
        let token = uuid::Uuid::new_v4().to_string();
        for step in Step::ALL {
            self.step(&id, kind, &token, step, now).await?;
        }
        Ok(())
    }

    /// One step for the version `token` of the secret `id` (of kind `kind`). Each step may
    /// run again (Secrets Manager retries): a step already done does nothing.
    pub async fn step(
        &self,
        id: &str,
        kind: SecretKind,
        token: &str,
        step: Step,
        now: i64,
    ) -> Result<(), RotationError> {
        match step {
            Step::Create => self.create(id, kind, token, now).await,
            // The keys live only in the secret: no other system to tell.
            Step::Set => Ok(()),
            Step::Test => self.test(id, kind, token).await,
            Step::Finish => self.finish(id, token).await,
        }
    }

    async fn value(
        &self,
        id: &str,
        version: Option<&str>,
        stage: &str,
    ) -> Result<Option<SecretString>, RotationError> {
        match self
            .client
            .get_secret_value()
            .secret_id(id)
            .set_version_id(version.map(str::to_string))
            .version_stage(stage)
            .send()
            .await
        {
            Ok(out) => Ok(out.secret_string().map(SecretString::new)),
            Err(e) if e.code() == Some("ResourceNotFoundException") && version.is_some() => {
                Ok(None)
            }
            Err(e) => Err(unavailable("GetSecretValue", id)(e)),
        }
    }

    /// The id and creation time (epoch seconds) of the version staged `AWSCURRENT`.
    async fn current_version(&self, id: &str) -> Result<(String, i64), RotationError> {
        let out = self
            .client
            .list_secret_version_ids()
            .secret_id(id)
            .send()
            .await
            .map_err(unavailable("ListSecretVersionIds", id))?;
        out.versions()
            .iter()
            .find(|v| v.version_stages().iter().any(|s| s == CURRENT))
            .and_then(|v| Some((v.version_id()?.to_string(), v.created_date()?.secs())))
            .ok_or_else(|| RotationError::Refused(format!("{id} has no current version")))
    }

    async fn create(
        &self,
        id: &str,
        kind: SecretKind,
        token: &str,
        now: i64,
    ) -> Result<(), RotationError> {
        let (current_id, created) = self.current_version(id).await?;
        if current_id == token || self.value(id, Some(token), PENDING).await?.is_some() {
            return Ok(());
        }
        let current = self
            .value(id, None, CURRENT)
            .await?
            .ok_or_else(|| RotationError::Refused(format!("{id} has no string value")))?;
        let doc: Value = serde_json::from_str(current.expose_secret()).map_err(|_| {
            RotationError::Refused(format!("the current document of {id} is not JSON"))
        })?;
        let kept = doc.get("current").filter(|v| !v.is_null()).cloned();
        if kept.is_some() {
            validate(kind, &current).map_err(|e| {
                RotationError::Refused(format!("the current document of {id}: {e}"))
            })?;
        }
        let drops_previous = doc.get("previous").is_some_and(|p| !p.is_null());
        let hold = hold(kind, self.refresh);
        let age = now.saturating_sub(created);
        if drops_previous && age < hold.as_secs() as i64 {
            return Err(RotationError::Refused(format!(
                "the {} key became current {age} s ago; its previous key may be in use for \
                 {} s after that, and rotating now would drop it (try again later)",
                kind.name(),
                hold.as_secs()
            )));
        }
        let fresh = generate(kind)
            .map_err(|e| RotationError::Refused(format!("new {} key: {e}", kind.name())))?;
        let mut next = json!({ "current": fresh });
        if let Some(old) = kept {
            next["previous"] = old;
        }
        let next = SecretString::new(next.to_string());
        validate(kind, &next).map_err(|e| RotationError::Refused(e.to_string()))?;
        self.client
            .put_secret_value()
            .secret_id(id)
            .client_request_token(token)
            .secret_string(next.expose_secret())
            .version_stages(PENDING)
            .send()
            .await
            .map_err(unavailable("PutSecretValue", id))?;
        Ok(())
    }

    /// The pending document holds usable keys, and the key current now as its `previous`.
    async fn test(&self, id: &str, kind: SecretKind, token: &str) -> Result<(), RotationError> {
        let (current_id, _) = self.current_version(id).await?;
        if current_id == token {
            return Ok(());
        }
        let pending = self.value(id, Some(token), PENDING).await?.ok_or_else(|| {
            RotationError::Refused(format!("{id} has no pending version {token}"))
        })?;
        validate(kind, &pending)
            .map_err(|e| RotationError::Refused(format!("the pending document: {e}")))?;
        let current = self
            .value(id, None, CURRENT)
            .await?
            .unwrap_or_else(|| SecretString::new(String::new()));
        let current_key = serde_json::from_str::<Value>(current.expose_secret())
            .ok()
            .and_then(|d| d.get("current").filter(|v| !v.is_null()).cloned());
        let kept = serde_json::from_str::<Value>(pending.expose_secret())
            .ok()
            .and_then(|d| d.get("previous").cloned());
        if let Some(current_key) = current_key
            && kept.as_ref() != Some(&current_key)
        {
            return Err(RotationError::Refused(format!(
                "the pending document of {id} does not keep the current key as previous"
            )));
        }
        Ok(())
    }

    async fn finish(&self, id: &str, token: &str) -> Result<(), RotationError> {
        let (current_id, _) = self.current_version(id).await?;
        if current_id != token {
            self.client
                .update_secret_version_stage()
                .secret_id(id)
                .version_stage(CURRENT)
                .move_to_version_id(token)
                .remove_from_version_id(&current_id)
                .send()
                .await
                .map_err(unavailable("UpdateSecretVersionStage", id))?;
        }
        // The pending label has done its work (Secrets Manager drops it too).
        let _ = self
            .client
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage(PENDING)
            .remove_from_version_id(token)
            .send()
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_for_what_was_made_with_it_and_three_refreshes() {
        let refresh = Duration::from_secs(300);
        assert_eq!(
            hold(SecretKind::Cookie, refresh),
            Duration::from_secs(7 * 24 * 3600 + 900)
        );
        assert_eq!(
            hold(SecretKind::Signing, refresh),
            Duration::from_secs(3600 + 900)
        );
        assert_eq!(hold(SecretKind::SamlSp, refresh), Duration::from_secs(900));
    }

    #[test]
    fn the_cookie_key_is_held_while_an_outbox_message_sealed_with_it_lives() {
        let held = hold(SecretKind::Cookie, Duration::ZERO).as_secs() as i64;
        assert!(held >= crate::config::OUTBOX_TTL_SECS);
        assert!(held >= crate::config::SESSION_LIFETIME_SECS);
    }

    #[test]
    fn steps_have_the_protocols_names() {
        assert_eq!(Step::parse("createSecret"), Some(Step::Create));
        assert_eq!(Step::parse("setSecret"), Some(Step::Set));
        assert_eq!(Step::parse("testSecret"), Some(Step::Test));
        assert_eq!(Step::parse("finishSecret"), Some(Step::Finish));
        assert_eq!(Step::parse("deleteSecret"), None);
    }
}
