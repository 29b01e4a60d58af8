//! The `sso-acs` Lambda: wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    let state = identity_shared::AppState::for_lambda(sso_acs::WARM).await?;
    lambda_http::run(sso_acs::app(state)).await
}
