//! `identity`: `serve` runs every function's routes in one process; `admin` is the
//! operator's command group, against the same `IDENTITY_STORE` as the service; `login`,
//! `whoami`, `token`, `logout` and `authorizations` are the commands for people and CI,
//! against a server over HTTP (`user`).

mod admin;
pub mod dev_idp;
pub mod example_partner;
mod user;

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use clap::{Parser, Subcommand};
use identity_shared::config::{SecretsSpec, StoreSpec};
use identity_shared::http::impersonation;
use identity_shared::oauth::OAuthClients;
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
        /// Run without the development IdP (which signs in anyone). Required to serve a
        /// DynamoDB store or Secrets Manager keys: the development IdP is only ever
        /// installed on the embedded store.
        #[arg(long)]
        no_dev_idp: bool,
    },
    /// Operator commands against IDENTITY_STORE.
    Admin(Box<admin::AdminArgs>),
    #[command(flatten)]
    User(user::UserCommand),
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
    impersonation::service(function_routes().merge(example_partner::routes()), state)
}

/// `router` plus the development IdP: what `identity serve` runs.
pub fn router_with_dev_idp(state: AppState, dev: std::sync::Arc<dev_idp::DevIdp>) -> Router {
    let routes = function_routes()
        .merge(example_partner::routes())
        .merge(dev_idp::routes(dev));
    impersonation::service(routes, state)
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
        Command::Serve { listen, no_dev_idp } => {
            identity_shared::logging::init();
            match serve(listen, !no_dev_idp).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Admin(args) => admin::run(*args).await,
        Command::User(cmd) => user::run(cmd).await,
    }
}

/// Why `serve` will not put the development IdP on a store other than the embedded one.
pub const DEV_IDP_REFUSAL: &str = "identity serve installs the development IdP, which signs in \
anyone, and does so only on the embedded store with embedded keys. To serve a DynamoDB store \
or Secrets Manager keys, pass --no-dev-idp.";

/// Why `serve` will not put the development IdP on an address other machines reach.
pub const DEV_IDP_LOOPBACK_ONLY: &str = "identity serve installs the development IdP, which \
signs in anyone (and signs SAML for anyone who asks), so it listens only on a loopback address \
(127.0.0.1, ::1). To listen elsewhere, pass --no-dev-idp.";

async fn serve(listen: SocketAddr, with_dev_idp: bool) -> Result<(), Box<dyn std::error::Error>> {
    if with_dev_idp && !listen.ip().is_loopback() {
        return Err(DEV_IDP_LOOPBACK_ONLY.into());
    }
    let mut config = Config::from_env_with_base(&format!("http://{listen}"))?;
    let embedded = matches!(config.store, StoreSpec::Embedded(_))
        && matches!(config.secrets, SecretsSpec::Embedded);
    if with_dev_idp && !embedded {
        return Err(DEV_IDP_REFUSAL.into());
    }
    config.dev_idp = with_dev_idp;
    // The XML-DSig stack is checked before anything is served, as the sso-acs Lambda does.
    sso_acs::saml::self_test()?;
    // Checked here so a bad value is a clear start-up error, not a panic in routes().
    identity_shared::oauth::OAuthSettings::from_env()?;
    let state = AppState::build(config, identity_shared::clock::system()).await?;
    // Mail through SES when IDENTITY_MAIL_FROM is set, as in a deployment; else the outbox.
    let state = sso_acs::mail::configure(state).await?;
    // Generate (first start) or load the keys now, not on the first request.
    state
        .secrets
        .warm(&[SecretKind::Cookie, SecretKind::Signing, SecretKind::SamlSp])
        .await?;
    // `identity login` signs in through this client.
    state.store.ensure_cli_client().await?;
    let dev = if with_dev_idp {
        Some(dev_idp::install(&state).await?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let base = state.config.base_url.clone();
    println!("identity is listening on http://{}", listener.local_addr()?);
    println!(
        "  store: {:?}   secrets: {}",
        state.config.store,
        state.secrets.source_name()
    );
    for (what, url) in urls(&base) {
        if what == "Development IdP" && dev.is_none() {
            continue;
        }
        println!("  {what:<24} {url}");
    }
    let app = match dev {
        Some(dev) => router_with_dev_idp(state, dev),
        None => router(state),
    };
    // Connect info gives the peer address to handlers that record it (login history).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
