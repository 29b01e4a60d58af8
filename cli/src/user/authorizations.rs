//! `identity authorizations …`: long-lived API keys (`create`, `list`, `revoke`, Heroku's
//! `authorizations:*`) and an app's JWT authorizations (`jwt add`, `jwt list`, `jwt remove`,
//! AppLink's `authorizations:jwt:*`). `jwt add` signs the RFC 7523 assertion here with the
//! key file; only the assertion is sent.

use std::path::PathBuf;

use clap::Subcommand;
use http::{Method, StatusCode};
use identity_shared::crypto;
use identity_shared::secret::SecretString;
use serde_json::json;

use super::credentials::Credentials;
use super::net::Body;
use super::{Failure, Target, bearer, call, expect, now, segment, server, text};

/// Lifetime of the assertion `jwt add` signs: the grant takes at most 5 minutes.
const ASSERTION_LIFETIME_SECS: i64 = 120;

#[derive(Debug, Subcommand)]
pub enum AuthorizationsCommand {
    /// Make a long-lived API key (for CI: IDENTITY_API_KEY).
    ///
    /// Printed once; the server keeps only its hash. It ends when revoked, when it expires,
    /// and when your account moves to SSO.
    Create {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        description: Option<String>,
        /// Lifetime in seconds (60 to 31536000); default: until revoked.
        #[arg(long)]
        expires_in: Option<i64>,
    },
    /// Your API keys (never their tokens).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Revoke one of your API keys.
    Revoke {
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// An app's JWT authorizations (AppLink): add, list, remove.
    #[command(subcommand)]
    Jwt(JwtCommand),
}

#[derive(Debug, Subcommand)]
pub enum JwtCommand {
    /// Add a named authorization to an app (AppLink's authorizations:jwt:add).
    ///
    /// The assertion is signed here with the key file (the key never leaves this machine)
    /// and the server runs the JWT bearer grant with it. You must be the app's owner or an
    /// admin of it.
    Add {
        /// The developer name (3–30 letters, digits, _ or -).
        name: String,
        #[arg(long)]
        app: String,
        /// The JWT client's client_id (`identity admin jwt-client add`).
        #[arg(long)]
        client_id: String,
        /// The client's private key (PEM: PKCS#8, PKCS#1 or SEC1).
        #[arg(long)]
        jwt_key_file: PathBuf,
        /// The user the authorization acts as (pre-authorized for the client).
        #[arg(long)]
        username: String,
        /// Default: applink:NAME.
        #[arg(long)]
        alias: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// An app's named authorizations (never their tokens).
    List {
        #[arg(long)]
        app: String,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a named authorization from an app.
    Remove {
        name: String,
        #[arg(long)]
        app: String,
        #[command(flatten)]
        target: Target,
    },
}

pub async fn run(cmd: AuthorizationsCommand) -> Result<(), Failure> {
    match cmd {
        AuthorizationsCommand::Create {
            target,
            description,
            expires_in,
        } => {
            let mut body = json!({});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(s) = expires_in {
                body["expires_in"] = json!(s);
            }
            let a = call(&target, Method::POST, "/oauth/authorizations", Some(&body)).await?;
            expect(&a, StatusCode::CREATED, "could not create the API key")?;
            let j = &a.json;
            println!("ID:          {}", text(j, "id"));
            println!("Description: {}", text(j, "description"));
            println!(
                "Expires:     {}",
                j["expires_at"].as_str().unwrap_or("never (until revoked)")
            );
            println!("Token:       {}", text(j, "token"));
            Ok(())
        }
        AuthorizationsCommand::List { target } => {
            let a = call(&target, Method::GET, "/oauth/authorizations", None).await?;
            expect(&a, StatusCode::OK, "could not list the API keys")?;
            let keys = a.json["authorizations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if keys.is_empty() {
                println!("No API keys.");
            }
            for k in keys {
                println!(
                    "{}  {}  created {}  expires {}",
                    text(&k, "id"),
                    k["description"]
                        .as_str()
                        .filter(|d| !d.is_empty())
                        .unwrap_or("-"),
                    text(&k, "created_at"),
                    k["expires_at"].as_str().unwrap_or("never"),
                );
            }
            Ok(())
        }
        AuthorizationsCommand::Revoke { id, target } => {
            let path = format!("/oauth/authorizations/{}", segment(&id));
            let a = call(&target, Method::DELETE, &path, None).await?;
            expect(&a, StatusCode::OK, "could not revoke the API key")?;
            println!("Revoked API key {id}");
            Ok(())
        }
        AuthorizationsCommand::Jwt(cmd) => jwt(cmd).await,
    }
}

async fn jwt(cmd: JwtCommand) -> Result<(), Failure> {
    match cmd {
        JwtCommand::Add {
            name,
            app,
            client_id,
            jwt_key_file,
            username,
            alias,
            target,
        } => {
            let mut creds = Credentials::load()?;
            let server = server(&target, &creds)?;
            let key = SecretString::new(
                std::fs::read_to_string(&jwt_key_file)
                    .map_err(|e| Failure(format!("{}: {e}", jwt_key_file.display())))?,
            );
            // The audience is the server's issuer as its metadata names it (RFC 8414), which
            // stays right behind a proxy or a custom domain.
            let metadata = server
                .send(
                    Method::GET,
                    "/.well-known/oauth-authorization-server",
                    None,
                    Body::Empty,
                )
                .await?;
            let issuer = metadata.json["issuer"]
                .as_str()
                .filter(|_| metadata.status == StatusCode::OK)
                .ok_or_else(|| {
                    Failure(format!(
                        "{} did not say its issuer (RFC 8414 metadata)",
                        server.base
                    ))
                })?
                .to_string();
            let now = now();
            let claims = json!({
                "iss": client_id,
                "sub": username,
                "aud": issuer,
                "iat": now,
                "exp": now + ASSERTION_LIFETIME_SECS,
                "jti": crypto::b64url(&crypto::random_bytes(16)),
            });
            let assertion = jwt_grant::sign::sign_assertion(&key, &claims)
                .map_err(|e| Failure(format!("{}: {e}", jwt_key_file.display())))?;
            drop(key);
            let mut body = json!({ "name": name, "assertion": assertion.expose_secret() });
            if let Some(a) = alias {
                body["alias"] = json!(a);
            }
            print!("Adding credentials for {username} to {app} as {name}... ");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            let token = bearer(&server, &mut creds).await?;
            let path = format!("/apps/{}/authorizations", segment(&app));
            let a = server
                .send(Method::POST, &path, Some(&token), Body::Json(&body))
                .await?;
            if a.status != StatusCode::CREATED {
                println!();
            }
            expect(&a, StatusCode::CREATED, "the authorization was not added")?;
            println!("Connected (alias {})", text(&a.json, "alias"));
            Ok(())
        }
        JwtCommand::List { app, target } => {
            let path = format!("/apps/{}/authorizations", segment(&app));
            let a = call(&target, Method::GET, &path, None).await?;
            expect(
                &a,
                StatusCode::OK,
                "could not list the app's authorizations",
            )?;
            let list = a.json["authorizations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if list.is_empty() {
                println!("{app} has no JWT authorizations.");
            }
            for x in list {
                println!(
                    "{}  {}  {}  client={}  expires {}",
                    text(&x, "developer_name"),
                    text(&x, "alias"),
                    text(&x, "user"),
                    text(&x, "client_id"),
                    text(&x, "expires_at"),
                );
            }
            Ok(())
        }
        JwtCommand::Remove { name, app, target } => {
            let path = format!("/apps/{}/authorizations/{}", segment(&app), segment(&name));
            let a = call(&target, Method::DELETE, &path, None).await?;
            expect(&a, StatusCode::OK, "the authorization was not removed")?;
            println!("Removed {name} from {app}");
            Ok(())
        }
    }
}
