//! The `sso-acs` Lambda: wiring only. Everything a request needs is made during the init
//! phase: configuration, the AWS SDK clients, the keys this function uses (fetched), the
//! DynamoDB connection (opened with a read of the sessions table), and the XML-DSig stack
//! (libxml2, libxmlsec1, OpenSSL — linked statically, see build.rs), initialised and
//! checked by `saml::self_test` before the first request.

use identity_shared::store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    identity_shared::logging::init();
    sso_acs::saml::self_test()?;
    let state = identity_shared::AppState::for_lambda(sso_acs::WARM).await?;
    state.warm_store(Table::Sessions).await?;
    let state = sso_acs::mail::configure(state).await?;
    lambda_http::run(sso_acs::app(state)).await
}
