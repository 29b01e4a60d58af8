//! The `jwt-grant` Lambda: wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    let state = identity_shared::AppState::for_lambda(jwt_grant::WARM).await?;
    lambda_http::run(jwt_grant::app(state)).await
}
