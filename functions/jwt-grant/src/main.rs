//! The `jwt-grant` Lambda: wiring only. Everything a request needs is made during the init
//! phase: configuration, the AWS SDK clients, the keys this function uses (fetched), and the
//! DynamoDB connection (opened with a read of the table it reads first: the JWT client named by the assertion).

use identity_shared::store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    let state = identity_shared::AppState::for_lambda(jwt_grant::WARM).await?;
    state.warm_store(Table::JwtClients).await?;
    lambda_http::run(jwt_grant::app(state)).await
}
