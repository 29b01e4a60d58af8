//! `identity`: `serve` runs every function's routes in one process; `admin` is the
//! operator's command group, against the same `IDENTITY_STORE` as the service.

mod admin;
pub mod dev_idp;
pub mod example_partner;

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use clap::{Parser, Subcommand};
use identity_shared::http::plumbing;
use identity_shared::secrets::SecretKind;
use identity_shared::{AppState, Config};

#[derive(Debug, Parser)]
#[command(
    name = "identity",
    version,
    about = "Identity service: SAML SSO, OAuth 2.0, add-on SSO, JWT grants"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every endpoint in one process (local use), on the embedded store by default.
    Serve {
        /// Address to listen on; the base URL follows unless IDENTITY_BASE_URL is set.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
    },
    /// Operator commands against IDENTITY_STORE.
    Admin(Box<admin::AdminArgs>),
}

/// Every function's routes in one router (state not yet given, layers not yet applied).
fn function_routes() -> Router<AppState> {
    sso_acs::routes()
        .merge(oauth_authorize::routes())
        .merge(oauth_token::routes())
        .merge(addon_sso::routes())
        .merge(jwt_grant::routes())
}

/// Every function's routes plus the example partner (local use only), layers applied once:
/// what the tests drive.
pub fn router(state: AppState) -> Router {
    plumbing::layers(function_routes().merge(example_partner::routes())).with_state(state)
}

/// `router` plus the development IdP: what `identity serve` runs.
pub fn router_with_dev_idp(state: AppState, dev: std::sync::Arc<dev_idp::DevIdp>) -> Router {
    let routes = function_routes()
        .merge(example_partner::routes())
        .merge(dev_idp::routes(dev));
    plumbing::layers(routes).with_state(state)
}

/// What `serve` prints for a person to open.
pub fn urls(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Login page", format!("{base}/login")),
        ("SAML SP metadata", format!("{base}/sso/metadata")),
        ("Development IdP", format!("{base}/sso/login?idp=dev")),
        ("Current session (JSON)", format!("{base}/session")),
        (
            "OAuth metadata",
            format!("{base}/.well-known/oauth-authorization-server"),
        ),
        ("OAuth JWKS", format!("{base}/.well-known/jwks.json")),
        (
            "OAuth authorizations",
            format!("{base}/account/authorizations"),
        ),
        (
            "Example add-on partner",
            format!("{base}{}", example_partner::PAGE_PATH),
        ),
    ]
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { listen } => {
            identity_shared::logging::init();
            match serve(listen).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Admin(args) => admin::run(*args).await,
    }
}

async fn serve(listen: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::from_env_with_base(&format!("http://{listen}"))?;
    config.dev_idp = true;
    // Checked here so a bad value is a clear start-up error, not a panic in routes().
    identity_shared::oauth::OAuthSettings::from_env()?;
    let state = AppState::build(config, identity_shared::clock::system()).await?;
    // Generate (first start) or load the keys now, not on the first request.
    state
        .secrets
        .warm(&[SecretKind::Cookie, SecretKind::Signing, SecretKind::SamlSp])
        .await?;
    let dev = dev_idp::install(&state).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let base = state.config.base_url.clone();
    println!("identity is listening on http://{}", listener.local_addr()?);
    println!(
        "  store: {:?}   secrets: {}",
        state.config.store,
        state.secrets.source_name()
    );
    for (what, url) in urls(&base) {
        println!("  {what:<24} {url}");
    }
    // Connect info gives the peer address to handlers that record it (login history).
    axum::serve(
        listener,
        router_with_dev_idp(state, dev).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
