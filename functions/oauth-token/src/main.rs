//! The `oauth-token` Lambda: wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    let settings = identity_shared::oauth::OAuthSettings::from_env()?;
    let state = identity_shared::AppState::for_lambda(oauth_token::WARM).await?;
    lambda_http::run(oauth_token::app_with(state, settings)).await
}
