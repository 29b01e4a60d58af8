//! The `oauth-authorize` Lambda: wiring only. Everything a request needs is made during the init
//! phase: configuration, the AWS SDK clients, the keys this function uses (fetched), and the
//! DynamoDB connection (opened with a read of the table it reads first: the session (every route starts from the signed-in user)).

use identity_shared::store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    let state = identity_shared::AppState::for_lambda(oauth_authorize::WARM).await?;
    state.warm_store(Table::Sessions).await?;
    lambda_http::run(oauth_authorize::app(state)).await
}
