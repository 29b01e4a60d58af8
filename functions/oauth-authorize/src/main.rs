//! The `oauth-authorize` Lambda: wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    let state = identity_shared::AppState::for_lambda(oauth_authorize::WARM).await?;
    lambda_http::run(oauth_authorize::app(state)).await
}
