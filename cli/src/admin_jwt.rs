//! `identity admin jwt-client …`, `identity admin login-history` and
//! `identity admin authorization …`: the operator's side of the JWT bearer grant.
//! Each command answers one JSON object and a short text (see `admin.rs`).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use identity_shared::accounts::{Account, Accounts, Email};
use identity_shared::apps::{App, Apps};
use identity_shared::authorizations::{NamedAuthorization, NamedAuthorizations};
use identity_shared::config::{self, Config, StoreSpec};
use identity_shared::jwt_clients::{Certificate, JwtClient, JwtClients};
use identity_shared::login_history::{HistoryFilter, LoginHistory};
use identity_shared::secret::SecretString;
use identity_shared::store::Store;
use identity_shared::{AppState, crypto};
use jwt_grant::grant::{Origin, Via};
use serde_json::{Value, json};

/// Lifetime of the assertion `authorization add` makes for itself.
const ASSERTION_LIFETIME_SECS: i64 = 120;

#[derive(Debug, Subcommand)]
pub enum JwtCommand {
    /// JWT bearer clients (RFC 7523) for CI: certificates, pre-authorized users, scopes.
    #[command(subcommand)]
    JwtClient(JwtClientCommand),
    /// Recent attempts of the JWT bearer grant (good and bad), newest first.
    LoginHistory {
        /// Only this client's attempts.
        #[arg(long)]
        client: Option<String>,
        /// Only attempts for this user (the assertion's sub).
        #[arg(long)]
        user: Option<String>,
        /// At most this many attempts.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
    /// Named authorizations (developer name + alias) made through the JWT grant.
    #[command(subcommand)]
    Authorization(AuthorizationCommand),
}

#[derive(Debug, Subcommand)]
pub enum JwtClientCommand {
    /// Register a client; prints its client_id (the assertions' iss).
    Add {
        #[arg(long)]
        name: String,
        /// PEM X.509 certificate (RSA 2048–4096 or EC P-256); repeat for several.
        #[arg(long = "cert", value_name = "FILE", required = true, num_args = 1..)]
        certs: Vec<PathBuf>,
        /// Email of a user the client may act for; repeat for several.
        #[arg(long = "user", value_name = "EMAIL", required = true, num_args = 1..)]
        users: Vec<String>,
        /// A scope the client may be given; repeat for several.
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
    },
    /// Add a certificate (rotation: both keys work until one is removed).
    AddCert {
        client_id: String,
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
    },
    /// Remove a certificate, named by its thumbprint (x5t#S256, x5t or a hex fingerprint)
    /// or by the certificate file; its key is refused from then on.
    RemoveCert {
        client_id: String,
        #[arg(long, conflicts_with = "cert", required_unless_present = "cert")]
        thumbprint: Option<String>,
        #[arg(long, value_name = "FILE")]
        cert: Option<PathBuf>,
    },
    /// Pre-authorize users for the client.
    AuthorizeUser {
        client_id: String,
        #[arg(long = "user", value_name = "EMAIL", required = true, num_args = 1..)]
        users: Vec<String>,
    },
    /// Withdraw users' pre-authorization; their next assertion is refused.
    DeauthorizeUser {
        client_id: String,
        #[arg(long = "user", value_name = "EMAIL", required = true, num_args = 1..)]
        users: Vec<String>,
    },
    /// Show a client.
    Show { client_id: String },
    /// List clients.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuthorizationCommand {
    /// Run the JWT grant with the key file and store the credentials for the app under the
    /// developer name NAME (3–30 characters, a letter first) and the alias (default
    /// applink:NAME). Running it again for the same name refreshes the credentials.
    Add {
        name: String,
        /// The app (name or id).
        #[arg(long)]
        app: String,
        /// The JWT client's client_id.
        #[arg(long)]
        client_id: String,
        /// PEM private key (RSA or EC P-256) of one of the client's certificates.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// The user to act for (pre-authorized for the client).
        #[arg(long, value_name = "EMAIL")]
        user: String,
        #[arg(long)]
        alias: Option<String>,
        /// Space-separated scopes to ask for (default: all of the client's).
        #[arg(long)]
        scope: Option<String>,
    },
    /// List an app's named authorizations (never their tokens).
    List {
        #[arg(long)]
        app: String,
    },
    /// Remove a named authorization.
    Remove {
        name: String,
        #[arg(long)]
        app: String,
    },
}

/// A command's JSON object and text, or the failure's message.
pub type Answer = Result<(Value, String), String>;

fn fail<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

pub async fn run(spec: &StoreSpec, store: &Store, cmd: JwtCommand) -> Answer {
    match cmd {
        JwtCommand::JwtClient(cmd) => jwt_client(store, cmd).await,
        JwtCommand::LoginHistory {
            client,
            user,
            limit,
        } => login_history(store, client, user, limit as usize).await,
        JwtCommand::Authorization(cmd) => authorization(spec, store, cmd).await,
    }
}

async fn account(store: &Store, email: &str) -> Result<Account, String> {
    let email = Email::parse(email).map_err(|e| format!("{email:?}: {e}"))?;
    store
        .account_by_email(&email)
        .await
        .map_err(fail)?
        .ok_or_else(|| format!("no account for {email}"))
}

fn read_certificate(path: &Path, now: i64) -> Result<Certificate, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Certificate::from_pem(&text, now).map_err(|e| format!("{}: {e}", path.display()))
}

fn client_answer(client: &JwtClient, text: String) -> Answer {
    Ok((client.public_json(), text))
}

async fn existing_client(store: &Store, client_id: &str) -> Result<JwtClient, String> {
    store
        .jwt_client(client_id)
        .await
        .map_err(fail)?
        .ok_or_else(|| format!("no JWT client {client_id}"))
}

async fn jwt_client(store: &Store, cmd: JwtClientCommand) -> Answer {
    let now = store.now();
    match cmd {
        JwtClientCommand::Add {
            name,
            certs,
            users,
            scopes,
        } => {
            let certificates = certs
                .iter()
                .map(|p| read_certificate(p, now))
                .collect::<Result<Vec<_>, _>>()?;
            let mut accounts = Vec::new();
            for u in &users {
                accounts.push(account(store, u).await?);
            }
            let client = store
                .create_jwt_client(&name, certificates, &accounts, &scopes)
                .await
                .map_err(fail)?;
            let text = format!(
                "created JWT client {} ({}): {} certificate(s), {} user(s)\nclient_id: {}",
                client.name,
                client.client_id,
                client.certificates.len(),
                client.users.len(),
                client.client_id
            );
            client_answer(&client, text)
        }
        JwtClientCommand::AddCert { client_id, cert } => {
            let cert = read_certificate(&cert, now)?;
            let thumbprint = cert.x5t_s256.clone();
            let client = store
                .add_certificate(&client_id, cert)
                .await
                .map_err(fail)?;
            client_answer(
                &client,
                format!("added certificate {thumbprint} to {client_id}"),
            )
        }
        JwtClientCommand::RemoveCert {
            client_id,
            thumbprint,
            cert,
        } => {
            let thumbprint = match (thumbprint, cert) {
                (Some(t), _) => t,
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    // An expired certificate can still be named for removal.
                    Certificate::from_pem(&text, i64::MIN)
                        .map_err(|e| format!("{}: {e}", path.display()))?
                        .x5t_s256
                }
                (None, None) => return Err("give --thumbprint or --cert".into()),
            };
            let client = store
                .remove_certificate(&client_id, &thumbprint)
                .await
                .map_err(fail)?;
            let mut text = format!("removed certificate {thumbprint} from {client_id}");
            if client.certificates.is_empty() {
                text.push_str(
                    "; the client has no certificate left, so every assertion is refused",
                );
            }
            client_answer(&client, text)
        }
        JwtClientCommand::AuthorizeUser { client_id, users } => {
            let mut accounts = Vec::new();
            for u in &users {
                accounts.push(account(store, u).await?);
            }
            let client = store
                .authorize_users(&client_id, &accounts)
                .await
                .map_err(fail)?;
            let emails: Vec<&str> = accounts.iter().map(|a| a.email.as_str()).collect();
            client_answer(
                &client,
                format!("pre-authorized {} for {client_id}", emails.join(", ")),
            )
        }
        JwtClientCommand::DeauthorizeUser { client_id, users } => {
            let client = existing_client(store, &client_id).await?;
            let mut ids = Vec::new();
            for u in &users {
                let email = Email::parse(u).map_err(|e| format!("{u:?}: {e}"))?;
                let user = client
                    .users
                    .iter()
                    .find(|p| p.email == email.as_str())
                    .ok_or_else(|| format!("{email} is not pre-authorized for {client_id}"))?;
                ids.push(user.account_id.clone());
            }
            let client = store
                .deauthorize_users(&client_id, &ids)
                .await
                .map_err(fail)?;
            client_answer(
                &client,
                format!(
                    "withdrew the pre-authorization of {} for {client_id}",
                    users.join(", ")
                ),
            )
        }
        JwtClientCommand::Show { client_id } => {
            let client = existing_client(store, &client_id).await?;
            let text = serde_json::to_string_pretty(&client.public_json()).map_err(fail)?;
            client_answer(&client, text)
        }
        JwtClientCommand::List => {
            let clients = store.list_jwt_clients().await.map_err(fail)?;
            let text = clients
                .iter()
                .map(|c| {
                    format!(
                        "{}  {}  {} certificate(s)  {} user(s)  scopes: {}",
                        c.client_id,
                        c.name,
                        c.certificates.len(),
                        c.users.len(),
                        c.scopes.join(" ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok((
                json!({ "clients": clients.iter().map(JwtClient::public_json).collect::<Vec<_>>() }),
                text,
            ))
        }
    }
}

async fn login_history(
    store: &Store,
    client: Option<String>,
    user: Option<String>,
    limit: usize,
) -> Answer {
    let user = user
        .map(|u| Email::parse(&u).map_err(|e| format!("{u:?}: {e}")))
        .transpose()?;
    let filter = HistoryFilter {
        client_id: client,
        user,
    };
    let attempts = store.login_attempts(&filter, limit).await.map_err(fail)?;
    let text = attempts
        .iter()
        .map(|a| {
            format!(
                "{}  {:<7}  client={}  sub={}  ip={}  via={}  {}",
                identity_shared::clock::rfc3339(a.at),
                a.outcome.as_str(),
                a.client_id.as_deref().unwrap_or("-"),
                a.subject.as_deref().unwrap_or("-"),
                a.source_ip.as_deref().unwrap_or("-"),
                a.via,
                a.reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok((
        json!({ "attempts": attempts.iter().map(|a| a.public_json()).collect::<Vec<_>>() }),
        text,
    ))
}

async fn app_named(store: &Store, app: &str) -> Result<App, String> {
    if let Some(a) = store.app_by_name(app).await.map_err(fail)? {
        return Ok(a);
    }
    store
        .app(app)
        .await
        .map_err(fail)?
        .ok_or_else(|| format!("no app named {app}"))
}

/// The service's state as the operator's environment describes it (base URL, secrets),
/// on the store the command was given.
pub(super) async fn service_state(spec: &StoreSpec) -> Result<AppState, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let base = var("IDENTITY_BASE_URL").unwrap_or_else(|| config::DEFAULT_BASE_URL.into());
    let secrets =
        config::parse_secrets(&var("IDENTITY_SECRETS").unwrap_or_else(|| "embedded".into()))
            .map_err(fail)?;
    let config = Config::new(base, spec.clone(), secrets).map_err(fail)?;
    AppState::build(config, identity_shared::clock::system())
        .await
        .map_err(fail)
}

async fn authorization(spec: &StoreSpec, store: &Store, cmd: AuthorizationCommand) -> Answer {
    match cmd {
        AuthorizationCommand::Add {
            name,
            app,
            client_id,
            key_file,
            user,
            alias,
            scope,
        } => {
            jwt_grant::named::names(&name, alias.as_deref()).map_err(fail)?;
            let app = app_named(store, &app).await?;
            let email = Email::parse(&user).map_err(|e| format!("{user:?}: {e}"))?;
            let key = SecretString::new(
                std::fs::read_to_string(&key_file)
                    .map_err(|e| format!("{}: {e}", key_file.display()))?,
            );
            let state = service_state(spec).await?;
            let now = state.now();
            let claims = json!({
                "iss": client_id,
                "sub": email.as_str(),
                "aud": state.config.base_url,
                "iat": now,
                "exp": now + ASSERTION_LIFETIME_SECS,
                "jti": crypto::b64url(&crypto::random_bytes(16)),
            });
            let assertion = jwt_grant::sign::sign_assertion(&key, &claims)
                .map_err(|e| format!("{}: {e}", key_file.display()))?;
            drop(key);
            let origin = Origin {
                source_ip: None,
                via: Via::Admin,
                app_id: Some(app.id.clone()),
            };
            let saved = jwt_grant::named::add(
                &state,
                &name,
                alias.as_deref(),
                assertion.expose_secret(),
                scope.as_deref(),
                &origin,
            )
            .await
            .map_err(fail)?;
            let mut out = saved.public_json();
            out["app"] = json!(app.name);
            out["status"] = json!("connected");
            Ok((
                out,
                format!(
                    "Adding credentials for {} to {} as {}... Connected (alias {})",
                    saved.email, app.name, saved.developer_name, saved.alias
                ),
            ))
        }
        AuthorizationCommand::List { app } => {
            let app = app_named(store, &app).await?;
            let list = store.list_authorizations(&app.id).await.map_err(fail)?;
            let now = store.now();
            let text = list
                .iter()
                .map(|a| {
                    format!(
                        "{}  {}  {}  client={}  expires {}{}",
                        a.developer_name,
                        a.alias,
                        a.email,
                        a.client_id,
                        identity_shared::clock::rfc3339(a.expires_at),
                        if a.expires_at <= now {
                            " (expired)"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok((
                json!({ "app": app.name, "authorizations": list.iter().map(NamedAuthorization::public_json).collect::<Vec<_>>() }),
                text,
            ))
        }
        AuthorizationCommand::Remove { name, app } => {
            let app = app_named(store, &app).await?;
            if !store
                .remove_authorization(&app.id, &name)
                .await
                .map_err(fail)?
            {
                return Err(format!("{} has no authorization named {name}", app.name));
            }
            Ok((
                json!({ "app": app.name, "removed": name }),
                format!("removed the authorization {name} from {}", app.name),
            ))
        }
    }
}
