//! The commands for people and CI, against a server over HTTP: `login`, `whoami`, `token`,
//! `logout`, `authorizations …`. Every one takes `--server URL`; without it the server is
//! `IDENTITY_SERVER`, else the one of the last login. `IDENTITY_API_KEY`, when set, is the
//! credential instead of the credentials file. A failure is one line on stderr and exit 1;
//! nothing secret is printed except by `token` and `authorizations create`.

mod authorizations;
mod credentials;
mod login;
mod net;
mod orgs;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use http::{Method, StatusCode};

use credentials::{Credentials, Login};
use net::{Answer, Body, Server};
use serde_json::Value;

pub use authorizations::AuthorizationsCommand;

/// A failure, as the one line the person reads.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which server a command talks to.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The identity server's URL (https, or http on a loopback host). Default:
    /// IDENTITY_SERVER, else the server of the last `identity login`.
    #[arg(long, env = "IDENTITY_SERVER")]
    server: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Sign in through the browser (device authorization, RFC 8628).
    ///
    /// The tokens are kept in the credentials file. Headless with --headless,
    /// IDENTITY_LEGACY_SSO=1, or no terminal on stdin: the address and code are printed,
    /// no browser is opened.
    Login {
        #[command(flatten)]
        target: Target,
        /// Never open a browser: print the address and the code, and wait.
        #[arg(long)]
        headless: bool,
    },
    /// Print the signed-in email.
    Whoami {
        #[command(flatten)]
        target: Target,
    },
    /// Print a fresh access token (for scripts; IDENTITY_API_KEY when set).
    Token {
        #[command(flatten)]
        target: Target,
    },
    /// Revoke the login's refresh token (RFC 7009) and forget the credentials.
    Logout {
        #[command(flatten)]
        target: Target,
    },
    /// Long-lived API keys (create, list, revoke) and an app's JWT authorizations (jwt …).
    #[command(subcommand)]
    Authorizations(AuthorizationsCommand),
    /// For a team's admins: its members and their SSO status, block, unblock, SSO role.
    #[command(subcommand)]
    Team(orgs::TeamCommand),
    /// For an enterprise account's managers: its members, block, unblock.
    #[command(subcommand)]
    Enterprise(orgs::EnterpriseCommand),
}

pub async fn run(cmd: UserCommand) -> ExitCode {
    let result = match cmd {
        UserCommand::Login { target, headless } => login::login(&target, headless).await,
        UserCommand::Whoami { target } => whoami(&target).await,
        UserCommand::Token { target } => token(&target).await,
        UserCommand::Logout { target } => logout(&target).await,
        UserCommand::Authorizations(cmd) => authorizations::run(cmd).await,
        UserCommand::Team(cmd) => orgs::team(cmd).await,
        UserCommand::Enterprise(cmd) => orgs::enterprise(cmd).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The server named by `--server`/`IDENTITY_SERVER`, else the last login's.
fn server(target: &Target, stored: &Credentials) -> Result<Server, Failure> {
    match target
        .server
        .as_deref()
        .or(stored.default_server.as_deref())
    {
        Some(url) => Server::new(url),
        None => Err(Failure(
            "no server: pass --server URL, set IDENTITY_SERVER, or run identity login --server URL"
                .into(),
        )),
    }
}

/// Refresh when the access token has less than this left.
const REFRESH_MARGIN_SECS: i64 = 60;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn not_logged_in(server: &Server) -> Failure {
    Failure(format!(
        "not logged in to {}: run identity login (or set IDENTITY_API_KEY)",
        server.base
    ))
}

/// The credential a command sends: `IDENTITY_API_KEY`, else the stored login's access
/// token, refreshed first when it is about to expire. A refresh replaces the stored refresh
/// token before anything else happens (it rotates); a refused one forgets the login.
async fn bearer(server: &Server, creds: &mut Credentials) -> Result<String, Failure> {
    if let Some(key) = std::env::var("IDENTITY_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        return Ok(key.trim().to_string());
    }
    let login = creds
        .servers
        .get(&server.base)
        .cloned()
        .ok_or_else(|| not_logged_in(server))?;
    if login.expires_at - now() > REFRESH_MARGIN_SECS {
        return Ok(login.access_token);
    }
    let answer = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &login.refresh_token),
            ("client_id", &login.client_id),
        ])
        .await?;
    if answer.status != StatusCode::OK {
        if answer.error() == "invalid_grant" {
            creds.servers.remove(&server.base);
            creds.save()?;
            return Err(Failure(format!(
                "your login to {} has ended (signed out, revoked or expired): run identity login",
                server.base
            )));
        }
        return Err(Failure(format!(
            "could not refresh the access token: {}",
            answer.explanation()
        )));
    }
    let fresh = tokens_of(&answer.json, login.email.clone(), &login.client_id)?;
    let token = fresh.access_token.clone();
    creds.servers.insert(server.base.clone(), fresh);
    creds.save()?;
    Ok(token)
}

/// A token response as a stored login.
fn tokens_of(json: &serde_json::Value, email: String, client_id: &str) -> Result<Login, Failure> {
    let field = |name: &str| {
        json[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Failure(format!("the server's token answer has no {name}")))
    };
    Ok(Login {
        email,
        access_token: field("access_token")?,
        refresh_token: field("refresh_token")?,
        expires_at: now() + json["expires_in"].as_i64().unwrap_or(0),
        client_id: client_id.to_string(),
    })
}

/// `GET /oauth/userinfo` with `token`: the email it names.
async fn email_of(server: &Server, token: &str) -> Result<String, Failure> {
    let answer = server
        .send(Method::GET, "/oauth/userinfo", Some(token), Body::Empty)
        .await?;
    match answer.status {
        StatusCode::OK => answer.json["email"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Failure("the server's userinfo answer has no email".into())),
        StatusCode::UNAUTHORIZED => Err(Failure(format!(
            "not logged in: {} no longer accepts this token (signed out, revoked or expired); run identity login",
            server.base
        ))),
        _ => Err(Failure(format!(
            "the server refused: {}",
            answer.explanation()
        ))),
    }
}

/// The target server and the credential to send it (`bearer`).
async fn server_and_bearer(target: &Target) -> Result<(Server, String), Failure> {
    let mut creds = Credentials::load()?;
    let server = server(target, &creds)?;
    let token = bearer(&server, &mut creds).await?;
    Ok((server, token))
}

async fn whoami(target: &Target) -> Result<(), Failure> {
    let (server, token) = server_and_bearer(target).await?;
    println!("{}", email_of(&server, &token).await?);
    Ok(())
}

async fn token(target: &Target) -> Result<(), Failure> {
    let (_, token) = server_and_bearer(target).await?;
    println!("{token}");
    Ok(())
}

async fn logout(target: &Target) -> Result<(), Failure> {
    let mut creds = Credentials::load()?;
    let server = server(target, &creds)?;
    let Some(login) = creds.servers.remove(&server.base) else {
        println!("Not logged in to {}", server.base);
        return Ok(());
    };
    if creds.default_server.as_deref() == Some(server.base.as_str()) {
        creds.default_server = None;
    }
    print!("Logging out... ");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // Forgotten here whatever the server says: the person asked for it.
    creds.save()?;
    let answer = server
        .send(
            Method::POST,
            "/oauth/revoke",
            None,
            Body::Form(&[
                ("token", &login.refresh_token),
                ("token_type_hint", "refresh_token"),
                ("client_id", &login.client_id),
            ]),
        )
        .await;
    match answer {
        Ok(a) if a.status == StatusCode::OK => {
            println!("done");
            Ok(())
        }
        Ok(a) => {
            println!();
            Err(Failure(format!(
                "credentials forgotten, but the server did not revoke the login: {}",
                a.explanation()
            )))
        }
        Err(Failure(why)) => {
            println!();
            Err(Failure(format!(
                "credentials forgotten, but the login could not be revoked: {why}"
            )))
        }
    }
}

/// One authenticated call to the target server.
pub(super) async fn call(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Answer, Failure> {
    let (server, token) = server_and_bearer(target).await?;
    let body = body.map_or(Body::Empty, Body::Json);
    server.send(method, path, Some(&token), body).await
}

/// The answer when it has `status`; otherwise one line saying why not.
pub(super) fn expect(a: &Answer, status: StatusCode, what: &str) -> Result<(), Failure> {
    if a.status == status {
        return Ok(());
    }
    let why = match a.status {
        StatusCode::UNAUTHORIZED => {
            "not logged in, or the token or API key is no longer accepted: run identity login"
                .to_string()
        }
        StatusCode::FORBIDDEN if a.error() == "insufficient_scope" => {
            "this credential may not do that (it lacks the scope)".to_string()
        }
        _ => a.explanation(),
    };
    Err(Failure(format!("{what}: {why}")))
}

pub(super) fn text<'a>(j: &'a Value, name: &str) -> &'a str {
    j[name].as_str().unwrap_or("")
}

/// A path segment, percent-encoded.
pub(super) fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
