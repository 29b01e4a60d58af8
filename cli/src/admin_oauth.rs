//! `identity admin client …` and `identity admin grant …`: OAuth clients and the grants
//! accounts gave them. A child module of `admin`, sharing its output conventions.

use clap::Subcommand;
use identity_shared::oauth::{Grants, NewClient, OAuthClients};
use identity_shared::store::Store;
use serde_json::{Value, json};

use super::{Failure, Output, account_by_email};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an OAuth client. Prints its client_id and, unless --public, its
    /// client_secret: shown this once, stored only as a hash.
    Add {
        #[arg(long)]
        name: String,
        /// Exact redirect URI (https, or http on a loopback host); repeat for more.
        #[arg(long = "redirect-uri", required = true, num_args = 1..)]
        redirect_uri: Vec<String>,
        /// Skip the consent page (first-party clients).
        #[arg(long)]
        trusted: bool,
        /// No secret (native and browser apps); PKCE protects its codes.
        #[arg(long)]
        public: bool,
        /// A scope the client may ask for (identity, read, write, read-protected,
        /// write-protected, global); repeat for more. Default: identity.
        #[arg(long = "scope", num_args = 1..)]
        scope: Vec<String>,
    },
    /// Register the `identity` command's own client (`identity-cli`: public, device flow,
    /// scopes identity and global) unless it exists; `identity login` needs it.
    /// `identity serve` does this at start.
    AddCli,
    /// Show one client.
    Show { client_id: String },
    /// List clients.
    List,
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// The live grants of an account.
    List {
        #[arg(long)]
        user: String,
    },
    /// Revoke a grant: every access and refresh token issued under it stops working.
    Revoke { id: String },
}

pub async fn client(store: &Store, cmd: ClientCommand) -> Result<Output, Failure> {
    match cmd {
        ClientCommand::Add {
            name,
            redirect_uri,
            trusted,
            public,
            scope,
        } => {
            let (client, secret) = store
                .create_client(NewClient {
                    name,
                    redirect_uris: redirect_uri,
                    scopes: scope,
                    trusted,
                    public,
                })
                .await?;
            let mut json = client.public_json();
            json["client_secret"] = secret
                .as_ref()
                .map_or(Value::Null, |s| s.expose_secret().into());
            let mut text = format!("client_id: {}", client.client_id);
            match &secret {
                Some(s) => text.push_str(&format!(
                    "\nclient_secret: {}\n(shown only now: the service keeps only its hash)",
                    s.expose_secret()
                )),
                None => text.push_str("\npublic client: no secret; PKCE (S256) is required"),
            }
            Ok(Output { json, text })
        }
        ClientCommand::AddCli => {
            let client = store.ensure_cli_client().await?;
            Ok(Output {
                text: format!(
                    "client_id: {} ({}): identity login can sign people in",
                    client.client_id, client.name
                ),
                json: client.public_json(),
            })
        }
        ClientCommand::Show { client_id } => {
            let client = store
                .client(&client_id)
                .await?
                .ok_or_else(|| Failure(format!("no client {client_id}")))?;
            let json = client.public_json();
            Ok(Output {
                text: serde_json::to_string_pretty(&json)?,
                json,
            })
        }
        ClientCommand::List => {
            let clients = store.list_clients().await?;
            let text = clients
                .iter()
                .map(|c| {
                    let kind = if c.public { "public" } else { "confidential" };
                    let trust = if c.trusted { " trusted" } else { "" };
                    format!("{}  {}  {kind}{trust}  {}", c.client_id, c.name, c.scope)
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                json: json!({ "clients": clients.iter().map(|c| c.public_json()).collect::<Vec<_>>() }),
                text,
            })
        }
    }
}

pub async fn grant(store: &Store, cmd: GrantCommand) -> Result<Output, Failure> {
    match cmd {
        GrantCommand::List { user } => {
            let account = account_by_email(store, &user).await?;
            let grants = store.grants_of(&account.id).await?;
            let mut rows = Vec::with_capacity(grants.len());
            for g in &grants {
                let mut j = g.public_json();
                j["client_name"] = store
                    .client(&g.client_id)
                    .await?
                    .map_or(Value::Null, |c| c.name.into());
                j["email"] = account.email.clone().into();
                rows.push(j);
            }
            let text = rows
                .iter()
                .map(|j| {
                    format!(
                        "{}  {}  {}",
                        j["grant_id"].as_str().unwrap_or(""),
                        j["client_name"].as_str().unwrap_or(""),
                        j["scopes"]
                            .as_array()
                            .map(|a| a
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(" "))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                json: json!({ "grants": rows }),
                text,
            })
        }
        GrantCommand::Revoke { id } => {
            let grant = store
                .revoke_grant(&id)
                .await?
                .ok_or_else(|| Failure(format!("no grant {id}")))?;
            Ok(Output {
                text: format!("revoked grant {} (client {})", grant.gid, grant.client_id),
                json: grant.public_json(),
            })
        }
    }
}
