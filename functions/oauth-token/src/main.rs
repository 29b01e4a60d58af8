//! The `oauth-token` Lambda: wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    let state = identity_shared::AppState::for_lambda(oauth_token::WARM).await?;
    lambda_http::run(oauth_token::app(state)).await
}
