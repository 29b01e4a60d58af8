//! The `addon-sso` Lambda: wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    let state = identity_shared::AppState::for_lambda(addon_sso::WARM).await?;
    lambda_http::run(addon_sso::app(state)).await
}
