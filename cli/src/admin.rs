//! `identity admin …`: every command prints one JSON object with `--json`, a short text
//! otherwise; failures exit 1 with `{"error": …}` (JSON) or `error: …` (text).

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use identity_shared::accounts::{AccountStatus, Accounts, Email, IdpRef, Offboarding};
use identity_shared::apps::{Apps, Role};
use identity_shared::audit::{Audit, ImpersonationLink, Impersonations};
use identity_shared::config::{self, StoreSpec};
use identity_shared::idps::Idps;
use identity_shared::orgs::Orgs;
use identity_shared::secret::SecretString;
use identity_shared::secrets::embedded::EmbeddedSecrets;
use identity_shared::secrets::{self, SecretKind};
use identity_shared::store::Store;
use identity_shared::store::dynamodb::DynamoDb;
use serde_json::{Value, json};

#[path = "admin_addon.rs"]
mod admin_addon;
#[path = "admin_jwt.rs"]
mod admin_jwt;
#[path = "admin_oauth.rs"]
mod admin_oauth;
#[path = "admin_org.rs"]
mod admin_org;
#[path = "admin_sso.rs"]
mod admin_sso;

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Print one JSON object.
    #[arg(long, global = true)]
    json: bool,
    /// Store to use (`embedded:PATH` or `dynamodb:`); defaults to IDENTITY_STORE.
    #[arg(long, global = true, env = "IDENTITY_STORE", default_value = config::DEFAULT_STORE)]
    store: String,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Apps and their collaborators.
    #[command(subcommand)]
    App(AppCommand),
    /// Teams: members with roles, apps, the role SSO gives.
    #[command(subcommand)]
    Team(admin_org::TeamCommand),
    /// Enterprise accounts: teams, members with permissions.
    #[command(subcommand)]
    Enterprise(admin_org::EnterpriseCommand),
    /// Add-ons: owned by an app; add-on SSO and partner credentials.
    #[command(subcommand)]
    Addon(admin_addon::AddonCommand),
    /// The audit log of "log in as" sessions: who acted as whom, when, why, what.
    Audit {
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
    /// DynamoDB tables (IDENTITY_STORE=dynamodb:).
    #[command(subcommand)]
    Tables(TablesCommand),
    /// Keys kept by the embedded secrets source.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// OAuth clients.
    #[command(subcommand)]
    Client(admin_oauth::ClientCommand),
    /// OAuth grants (an account's authorization of a client).
    #[command(subcommand)]
    Grant(admin_oauth::GrantCommand),
    /// The JWT bearer grant: jwt-client, login-history, authorization.
    #[command(flatten)]
    Jwt(admin_jwt::JwtCommand),
    /// SAML SSO: idp, outbox.
    #[command(flatten)]
    Sso(admin_sso::SsoCommand),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account (active). With --password-stdin it gets a password read from the
    /// first line of standard input; without, it can sign in only through SSO.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show one account.
    Show { email: String },
    /// List accounts.
    List,
    /// Block an account: its grants and tokens are revoked, its sessions end, and it signs
    /// in nowhere until unblocked.
    Block { email: String },
    /// Let a blocked account sign in again.
    Unblock { email: String },
    /// Sign an account out everywhere: every session and API key ends (grants stay).
    Signout { email: String },
    /// "Log in as" the account (offboarding): prints a single-use sign-in link, valid five
    /// minutes, for a marked session of an hour at most in which every action is audited.
    Impersonate {
        email: String,
        /// Why (kept in the audit log and shown on the link's page).
        #[arg(long)]
        reason: String,
        /// Who is signing in (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Create an app owned by an existing account (and by a team: its admins and members
    /// reach the app too).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        team: Option<String>,
    },
    /// Show an app and its people.
    Show { name: String },
    /// Collaborators: add (or change the role of) and remove.
    #[command(subcommand)]
    Collaborator(CollaboratorCommand),
}

#[derive(Debug, Subcommand)]
enum CollaboratorCommand {
    /// Give an account a role on the app (owner transfers the app).
    Add {
        app: String,
        email: String,
        #[arg(long, value_parser = ["owner", "admin", "member", "collaborator"])]
        role: String,
    },
    /// Remove an account from the app; its access ends at once.
    Remove { app: String, email: String },
}

#[derive(Debug, Subcommand)]
enum TablesCommand {
    /// Create every table (on-demand billing, TTL on `expires_at`); existing ones are kept.
    Create,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Rotate a key: the current one becomes previous (still accepted), a new one becomes
    /// current. KIND: cookie, signing, saml-sp. With IDENTITY_SECRETS=secretsmanager:PREFIX,
    /// the secret `{PREFIX}KIND` is rotated as Secrets Manager's rotation does it, and refused
    /// while the previous key may still be in use.
    Rotate { kind: String },
    /// Print a new key document `{"current": …}` for KIND, to store in Secrets Manager
    /// (`aws secretsmanager put-secret-value --secret-string "$(identity admin keys generate signing)"`).
    /// With --rotate-stdin, the current secret document is read from standard input and its
    /// current key kept as `previous`.
    Generate {
        kind: String,
        #[arg(long)]
        rotate_stdin: bool,
    },
}

/// An operator-facing failure.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// A command's result: the JSON object and the text for people.
struct Output {
    json: Value,
    text: String,
}

pub async fn run(args: AdminArgs) -> ExitCode {
    let json = args.json;
    match execute(args).await {
        Ok(out) => {
            if json {
                println!("{}", out.json);
            } else {
                println!("{}", out.text);
            }
            ExitCode::SUCCESS
        }
        Err(Failure(message)) => {
            if json {
                println!("{}", json!({ "error": message }));
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn execute(args: AdminArgs) -> Result<Output, Failure> {
    let prefix = std::env::var("IDENTITY_TABLE_PREFIX").unwrap_or_else(|_| "identity-".into());
    let spec = config::parse_store(&args.store, &prefix)?;
    if let AdminCommand::Tables(TablesCommand::Create) = args.command {
        return tables_create(&spec).await;
    }
    if let AdminCommand::Keys(KeysCommand::Generate { kind, rotate_stdin }) = &args.command {
        return keys_generate(kind, *rotate_stdin);
    }
    if let AdminCommand::Keys(KeysCommand::Rotate { kind }) = &args.command
        && let Ok(config::SecretsSpec::SecretsManager { prefix }) =
            config::parse_secrets(&std::env::var("IDENTITY_SECRETS").unwrap_or_default())
    {
        return keys_rotate_secretsmanager(kind, prefix).await;
    }
    let store = Store::open(&spec, identity_shared::clock::system(), None).await?;
    match args.command {
        AdminCommand::User(cmd) => user(&store, cmd).await,
        AdminCommand::App(cmd) => app(&store, cmd).await,
        AdminCommand::Team(cmd) => admin_org::team(&store, cmd).await,
        AdminCommand::Audit { limit } => {
            let entries = store.audit_entries(limit as usize).await?;
            let text = entries
                .iter()
                .map(|e| {
                    format!(
                        "{}  {} as {}  {}  ({})  [made by {}]",
                        identity_shared::clock::rfc3339(e.at),
                        e.by,
                        e.email,
                        e.action,
                        e.reason,
                        if e.operator.is_empty() {
                            "?"
                        } else {
                            &e.operator
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                json: json!({ "entries": entries.iter().map(|e| e.public_json()).collect::<Vec<_>>() }),
                text,
            })
        }
        AdminCommand::Enterprise(cmd) => admin_org::enterprise(&store, cmd).await,
        AdminCommand::Addon(cmd) => admin_addon::addon(&store, cmd).await,
        AdminCommand::Client(cmd) => admin_oauth::client(&store, cmd).await,
        AdminCommand::Grant(cmd) => admin_oauth::grant(&store, cmd).await,
        AdminCommand::Jwt(cmd) => admin_jwt::run(&spec, &store, cmd)
            .await
            .map(|(json, text)| Output { json, text })
            .map_err(Failure),
        AdminCommand::Sso(cmd) => admin_sso::run(&spec, &store, cmd)
            .await
            .map(|(json, text)| Output { json, text })
            .map_err(Failure),
        AdminCommand::Tables(TablesCommand::Create) => tables_create(&spec).await,
        AdminCommand::Keys(KeysCommand::Generate { kind, rotate_stdin }) => {
            keys_generate(&kind, rotate_stdin)
        }
        AdminCommand::Keys(KeysCommand::Rotate { kind }) => {
            let kind = parse_kind(&kind)?;
            EmbeddedSecrets::new(store).rotate(kind).await?;
            Ok(Output {
                json: json!({ "rotated": kind.name() }),
                text: format!(
                    "rotated the {} key; the previous one is still accepted",
                    kind.name()
                ),
            })
        }
    }
}

/// `keys rotate` on Secrets Manager: the four rotation steps, with the functions' refresh
/// interval (`IDENTITY_SECRETS_REFRESH_SECS`) deciding how long a previous key is held.
async fn keys_rotate_secretsmanager(kind: &str, prefix: String) -> Result<Output, Failure> {
    let kind = parse_kind(kind)?;
    let refresh = config::Config::from_env()?.secrets_refresh;
    let client = aws_sdk_secretsmanager::Client::new(&identity_shared::aws::sdk_config().await);
    let rotation = secrets::rotation::Rotation::new(client, prefix, refresh);
    rotation
        .rotate(kind, identity_shared::clock::system().now())
        .await?;
    Ok(Output {
        json: json!({ "rotated": kind.name(), "secret": rotation.secret_id(kind) }),
        text: format!(
            "rotated {}: a new key is current; the previous one is still accepted",
            rotation.secret_id(kind)
        ),
    })
}

fn parse_kind(kind: &str) -> Result<SecretKind, Failure> {
    SecretKind::parse(kind).ok_or_else(|| {
        Failure(format!(
            "no key kind {kind:?}; use cookie, signing or saml-sp"
        ))
    })
}

/// A key document for Secrets Manager. It holds private keys: it goes to stdout only,
/// because the operator asked for it to pipe it into `put-secret-value`.
fn keys_generate(kind: &str, rotate_stdin: bool) -> Result<Output, Failure> {
    let kind = parse_kind(kind)?;
    let mut doc = json!({ "current": secrets::generate(kind)? });
    if rotate_stdin {
        let mut old = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut old)?;
        let old = SecretString::new(old);
        secrets::validate(kind, &old)
            .map_err(|e| Failure(format!("the document on stdin: {e}")))?;
        let parsed: Value = serde_json::from_str(old.expose_secret())?;
        doc["previous"] = parsed["current"].clone();
    }
    secrets::validate(kind, &SecretString::new(doc.to_string()))?;
    Ok(Output {
        text: doc.to_string(),
        json: doc,
    })
}

async fn account_by_email(
    store: &Store,
    email: &str,
) -> Result<identity_shared::accounts::Account, Failure> {
    let email = Email::parse(email)?;
    store
        .account_by_email(&email)
        .await?
        .ok_or_else(|| Failure(format!("no account for {email}")))
}

/// Who this `identity admin` call runs as, as the store knows it, for the audit log (what
/// `--by` says is the operator's word only): on DynamoDB the AWS identity of the call
/// (`sts:GetCallerIdentity`; when it cannot be read, nothing is issued), on an embedded
/// store the local user that owns this process.
async fn operator_identity(store: &Store) -> Result<String, Failure> {
    if store.backend_name() == "dynamodb" {
        let sts = aws_sdk_sts::Client::new(&identity_shared::aws::sdk_config().await);
        let who = sts.get_caller_identity().send().await.map_err(|e| {
            Failure(format!(
                "could not tell which AWS identity runs this command (sts:GetCallerIdentity), so no link is made: {}",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            ))
        })?;
        return who.arn().map(str::to_string).ok_or_else(|| {
            Failure("sts:GetCallerIdentity named no identity, so no link is made".into())
        });
    }
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    Ok(format!("local uid {uid} on {}", host.trim()))
}

async fn user(store: &Store, cmd: UserCommand) -> Result<Output, Failure> {
    match cmd {
        UserCommand::Add {
            email,
            password_stdin,
        } => {
            let email = Email::parse(&email)?;
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            // Registered for the IdP that owns the domain now: its first SSO login links
            // it without asking the owner by email (see "What an IdP may assert").
            let owner = store.idp_for_domain(email.domain()).await?;
            let account = store
                .create_account_for_idp(
                    &email,
                    password.as_ref(),
                    AccountStatus::Active,
                    owner.as_ref().map(|i| i as &dyn IdpRef),
                )
                .await?;
            Ok(Output {
                text: format!("created account {} for {}", account.id, account.email),
                json: account.public_json(),
            })
        }
        UserCommand::Block { email } => {
            let account = account_by_email(store, &email).await?;
            let account = store.block_account(&account.id).await?;
            Ok(Output {
                text: format!(
                    "blocked {}: its sessions ended and its grants and tokens were revoked",
                    account.email
                ),
                json: account.public_json(),
            })
        }
        UserCommand::Unblock { email } => {
            let account = account_by_email(store, &email).await?;
            let account = store.unblock_account(&account.id).await?;
            Ok(Output {
                text: format!("unblocked {}: it can sign in again", account.email),
                json: account.public_json(),
            })
        }
        UserCommand::Signout { email } => {
            let account = account_by_email(store, &email).await?;
            let account = store.sign_out_everywhere(&account.id).await?;
            Ok(Output {
                text: format!("signed {} out everywhere", account.email),
                json: account.public_json(),
            })
        }
        UserCommand::Impersonate { email, reason, by } => {
            let account = account_by_email(store, &email).await?;
            let reason = reason.trim().to_string();
            if reason.is_empty() || reason.chars().any(char::is_control) || reason.len() > 500 {
                return Err(Failure(
                    "--reason must say why, in one line of at most 500 characters".into(),
                ));
            }
            let by = by
                .or_else(|| std::env::var("USER").ok())
                .filter(|b| !b.trim().is_empty())
                .unwrap_or_else(|| "operator".into());
            let operator = operator_identity(store).await?;
            let issued = store
                .issue_impersonation(&ImpersonationLink {
                    account_id: account.id.to_string(),
                    by: by.clone(),
                    reason,
                    operator: operator.clone(),
                })
                .await?;
            let (token, code) = (issued.token, issued.code);
            let base = std::env::var("IDENTITY_BASE_URL")
                .ok()
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| config::DEFAULT_BASE_URL.into());
            let link = format!(
                "{}/account/impersonate/{}",
                base.trim_end_matches('/'),
                token.expose_secret()
            );
            Ok(Output {
                text: format!(
                    "{link}\ncode: {code}\n(type the code on the link's page: the link alone signs nobody in; single use, five minutes: signs {by} in as {} for an hour at most, audited as made by {operator})",
                    account.email,
                    code = code.expose_secret(),
                ),
                json: json!({
                    "link": link,
                    "code": code.expose_secret(),
                    "email": account.email,
                    "by": by,
                    "operator": operator,
                    "expires_in": 300,
                }),
            })
        }
        UserCommand::Show { email } => {
            let account = account_by_email(store, &email).await?;
            Ok(Output {
                text: serde_json::to_string_pretty(&account.public_json())?,
                json: account.public_json(),
            })
        }
        UserCommand::List => {
            let accounts = store.list_accounts().await?;
            let text = accounts
                .iter()
                .map(|a| format!("{}  {}  {}", a.id, a.email, a.status.as_str()))
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                json: json!({ "accounts": accounts.iter().map(|a| a.public_json()).collect::<Vec<_>>() }),
                text,
            })
        }
    }
}

fn read_password() -> Result<SecretString, Failure> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = SecretString::new(line.trim_end_matches(['\r', '\n']));
    line.clear();
    if password.expose_secret().chars().count() < 8 {
        return Err(Failure("the password must be at least 8 characters".into()));
    }
    Ok(password)
}

async fn app_json(store: &Store, app: &identity_shared::apps::App) -> Result<Value, Failure> {
    let members = store.members(app).await?;
    let owner = members
        .iter()
        .find(|m| m.role == Role::Owner)
        .map(|m| m.email.clone());
    let team = match &app.team_id {
        Some(id) => store.team(id).await?.map(|t| t.name),
        None => None,
    };
    Ok(json!({
        "app_id": app.id,
        "name": app.name,
        "owner": owner,
        "team": team,
        "collaborators": members.iter().map(|m| json!({
            "email": m.email, "account_id": m.account_id, "role": m.role.as_str(),
        })).collect::<Vec<_>>(),
    }))
}

async fn app_by_name(store: &Store, name: &str) -> Result<identity_shared::apps::App, Failure> {
    store
        .app_by_name(name)
        .await?
        .ok_or_else(|| Failure(format!("no app named {name}")))
}

async fn app(store: &Store, cmd: AppCommand) -> Result<Output, Failure> {
    let (app, text) = match cmd {
        AppCommand::Add { name, owner, team } => {
            let owner = account_by_email(store, &owner).await?;
            let team = match team {
                Some(t) => Some(
                    store
                        .team_by_name(&t)
                        .await?
                        .ok_or_else(|| Failure(format!("no team {t}")))?,
                ),
                None => None,
            };
            let app = store.create_team_app(&name, &owner, team.as_ref()).await?;
            let text = format!(
                "created app {} ({}) owned by {}",
                app.name, app.id, owner.email
            );
            (app, text)
        }
        AppCommand::Show { name } => {
            let app = app_by_name(store, &name).await?;
            (app, String::new())
        }
        AppCommand::Collaborator(CollaboratorCommand::Add { app, email, role }) => {
            let app = app_by_name(store, &app).await?;
            let account = account_by_email(store, &email).await?;
            let role = Role::parse(&role).ok_or_else(|| Failure(format!("no role {role:?}")))?;
            store.set_role(&app, &account, role).await?;
            let text = format!("{} is now {} on {}", account.email, role.as_str(), app.name);
            (app_by_name(store, &app.name).await?, text)
        }
        AppCommand::Collaborator(CollaboratorCommand::Remove { app, email }) => {
            let app = app_by_name(store, &app).await?;
            let account = account_by_email(store, &email).await?;
            if !store.remove_member(&app, &account.id).await? {
                return Err(Failure(format!(
                    "{} is not a collaborator on {}",
                    account.email, app.name
                )));
            }
            let text = format!("removed {} from {}", account.email, app.name);
            (app, text)
        }
    };
    let json = app_json(store, &app).await?;
    let text = if text.is_empty() {
        serde_json::to_string_pretty(&json)?
    } else {
        text
    };
    Ok(Output { json, text })
}

async fn tables_create(spec: &StoreSpec) -> Result<Output, Failure> {
    let StoreSpec::DynamoDb { table_prefix } = spec else {
        return Err(Failure(
            "tables create is for IDENTITY_STORE=dynamodb: (the embedded store needs no tables)"
                .into(),
        ));
    };
    let db = DynamoDb::from_env(table_prefix.clone()).await;
    let created = db.create_tables().await?;
    let mut tables = Vec::new();
    for table in identity_shared::store::Table::ALL {
        let name = db.table_name(table);
        tables.push(json!({
            "table": name,
            "created": created.contains(&name),
            "ttl_attribute": db.ttl_attribute(table).await?,
        }));
    }
    let text = tables
        .iter()
        .map(|t| {
            let state = if t["created"] == true {
                "created"
            } else {
                "exists"
            };
            format!(
                "{}  {state}  ttl={}",
                t["table"].as_str().unwrap_or(""),
                t["ttl_attribute"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Output {
        json: json!({ "tables": tables }),
        text,
    })
}
