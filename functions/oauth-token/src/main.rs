//! The `oauth-token` Lambda: wiring only. Everything a request needs is made during the init
//! phase: configuration, the AWS SDK clients, the signing keys (fetched), and the DynamoDB
//! connection (opened with a read of the table it reads first: the OAuth clients).

use identity_shared::store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    let settings = identity_shared::oauth::OAuthSettings::from_env()?;
    let state = identity_shared::AppState::for_lambda(oauth_token::WARM).await?;
    state.warm_store(Table::OAuth).await?;
    lambda_http::run(oauth_token::app_with(state, settings)).await
}
