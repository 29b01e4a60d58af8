//! The `key-rotation` Lambda: Secrets Manager calls it for each step of a rotation of the
//! cookie, signing or SAML SP secret (template.yaml's RotationSchedules, every
//! `RotationDays`). The steps are `identity_shared::secrets::rotation`; this is the wiring.

use identity_shared::secrets::rotation::{Rotation, RotationEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    identity_shared::logging::init();
    let config = identity_shared::config::Config::from_env()?;
    let rotation = Rotation::from_config(&config).await?;
    let rotation = &rotation;
    let clock = identity_shared::clock::system();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RotationEvent>| {
        let now = clock.now();
        async move { Ok::<(), Error>(rotation.handle(&event.payload, now).await?) }
    }))
    .await
}
