//! The `key-rotation` Lambda: Secrets Manager calls it for each step of a rotation of the
//! cookie, signing or SAML SP secret (template.yaml's RotationSchedules, every
//! `RotationDays`). The steps are `identity_shared::secrets::rotation`; this is the wiring.

use identity_shared::secrets::rotation::{Rotation, RotationError, Step};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;

/// The event Secrets Manager sends for each step.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationEvent {
    secret_id: String,
    client_request_token: String,
    step: String,
}

async fn handle(rotation: &Rotation, event: LambdaEvent<RotationEvent>) -> Result<(), Error> {
    let e = event.payload;
    let step = Step::parse(&e.step).ok_or_else(|| format!("unknown rotation step {:?}", e.step))?;
    let kind = rotation.kind_of(&e.secret_id).await?;
    let now = identity_shared::clock::system().now();
    match rotation
        .step(&e.secret_id, kind, &e.client_request_token, step, now)
        .await
    {
        Ok(()) => {
            tracing::info!(secret = kind.name(), step = e.step, "rotation step done");
            Ok(())
        }
        Err(err) => {
            let refused = matches!(err, RotationError::Refused(_));
            tracing::warn!(secret = kind.name(), step = e.step, refused, error = %err, "rotation step failed");
            Err(err.into())
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    identity_shared::logging::init();
    let config = identity_shared::config::Config::from_env()?;
    let identity_shared::config::SecretsSpec::SecretsManager { prefix } = config.secrets else {
        return Err("key-rotation needs IDENTITY_SECRETS=secretsmanager:PREFIX".into());
    };
    let client = aws_sdk_secretsmanager::Client::new(&identity_shared::aws::sdk_config().await);
    let rotation = Rotation::new(client, prefix, config.secrets_refresh);
    let rotation = &rotation;
    lambda_runtime::run(service_fn(move |event| handle(rotation, event))).await
}
