//! `identity admin idp …` (SAML identity providers) and `identity admin outbox` (messages
//! waiting for people, such as welcome links). Each command answers one JSON object and a
//! short text (see `admin.rs`).

use std::path::PathBuf;

use base64::Engine;
use clap::Subcommand;
use identity_shared::accounts::Email;
use identity_shared::config::StoreSpec;
use identity_shared::idps::{Idp, Idps};
use identity_shared::jwt_clients::Certificate;
use identity_shared::orgs::Orgs;
use identity_shared::orgs::TeamRole;
use identity_shared::outbox::{Outbox, SealedBody};
use identity_shared::store::Store;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum SsoCommand {
    /// SAML identity providers.
    #[command(subcommand)]
    Idp(Box<IdpCommand>),
    /// Messages waiting for people (welcome links), newest first. They hold live links:
    /// hand them over only to the person they are for.
    Outbox {
        /// Only messages to this email.
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum IdpCommand {
    /// Register an IdP from its metadata XML, or from entity ID + SSO URL + certificate(s).
    ///
    /// What an IdP may assert: only emails of the domains it owns (`--domain`, exact and
    /// case-insensitive, each owned by one IdP). It takes over no account outside them,
    /// links an existing account only when an operator registered it for the IdP or its
    /// owner confirms (password, or emailed link), and signs in only the browser that
    /// started the login. IdP-initiated logins (`--allow-idp-initiated`) cannot
    /// be tied to a browser: they land on a page naming the account before going anywhere.
    Add(Box<IdpAdd>),
    /// Replace an IdP's certificates (rollover): give the new and, while it lasts, the old.
    SetCerts {
        id: String,
        #[arg(long = "cert", value_name = "FILE", required = true, num_args = 1..)]
        certs: Vec<PathBuf>,
    },
    Show {
        id: String,
    },
    List,
    /// Remove an IdP; its accounts are no longer under SSO.
    Remove {
        id: String,
    },
}

type Answer = Result<(Value, String), String>;

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A PEM certificate file → base64 DER, checked (RSA 2048–4096 or EC P-256, in date).
fn cert_file(path: &PathBuf, now: i64) -> Result<String, String> {
    let text = read(path)?;
    Certificate::from_pem(&text, now).map_err(|e| format!("{}: {e}", path.display()))?;
    let der = pem::parse(&text).map_err(fail)?.contents().to_vec();
    Ok(base64::engine::general_purpose::STANDARD.encode(der))
}

/// A metadata certificate (base64 DER) checked the same way.
fn check_b64_cert(b64: &str, now: i64) -> Result<String, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.split_whitespace().collect::<String>())
        .map_err(|_| "a metadata certificate is not base64".to_string())?;
    let text = pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()));
    Certificate::from_pem(&text, now).map_err(|e| format!("metadata certificate: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(der))
}

fn domain(d: &str) -> Result<String, String> {
    let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(format!("{d:?} is not an email domain"))
    }
}

/// `identity admin idp add`: see [`IdpCommand::Add`].
#[derive(Debug, clap::Args)]
pub struct IdpAdd {
    /// The IdP's id, as `/sso/login?idp=ID` names it (a-z, 0-9, -, _).
    #[arg(long)]
    id: String,
    /// IdP metadata XML (as Okta, Entra ID, Google Workspace or Keycloak export it).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["entity_id", "sso_url", "certs"])]
    metadata: Option<PathBuf>,
    #[arg(long, requires_all = ["sso_url", "certs"])]
    entity_id: Option<String>,
    /// The IdP's SSO endpoint (HTTP-Redirect binding).
    #[arg(long)]
    sso_url: Option<String>,
    /// The IdP's Single Logout endpoint (HTTP-Redirect binding); with --metadata, instead
    /// of the metadata's SingleLogoutService. Without one, signing out ends only our
    /// session.
    #[arg(long, value_name = "URL")]
    slo_url: Option<String>,
    /// PEM signing certificate; repeat for several (rollover).
    #[arg(long = "cert", value_name = "FILE", num_args = 1..)]
    certs: Vec<PathBuf>,
    /// Email domain whose people this IdP signs in; repeat for several. Required unless
    /// --insecure-any-domain.
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,
    /// DANGEROUS: let this IdP create accounts for emails of any domain no IdP owns (it
    /// still takes over no existing account). For test set-ups only; shown by `idp show`
    /// and logged at every login it makes.
    #[arg(long)]
    insecure_any_domain: bool,
    /// The team (`identity admin team add`) this IdP is connected to: its people join with
    /// the team's SSO default role. No default: without it, SSO logins give no team role.
    #[arg(long)]
    team: Option<String>,
    /// Sets the team's SSO default role (admin, member or collaborator; the team keeps
    /// `member` unless told), as a team admin can later.
    #[arg(long, requires = "team")]
    default_role: Option<String>,
    /// The enterprise account (`identity admin enterprise add`) this IdP is connected to:
    /// its people who are not members join with `view` (not configurable).
    #[arg(long)]
    enterprise: Option<String>,
    /// Accept unsolicited (IdP-initiated) responses. Nothing ties such a response to the
    /// browser it arrives in (anyone holding one can post it from any page), so the person
    /// lands on a page naming the account before going on.
    #[arg(long)]
    allow_idp_initiated: bool,
    /// Refuse logins whose AuthnContextClassRef is not an accepted MFA value.
    #[arg(long)]
    require_mfa: bool,
    /// An accepted MFA AuthnContextClassRef; repeat for several (default: REFEDS MFA,
    /// Entra ID's multipleauthn and SAML's multi-factor classes).
    #[arg(long = "mfa-context", value_name = "URI", requires = "require_mfa")]
    mfa_contexts: Vec<String>,
    /// Sign AuthnRequests (when not given by the metadata's WantAuthnRequestsSigned).
    #[arg(long)]
    sign_requests: bool,
}

pub async fn run(spec: &StoreSpec, store: &Store, cmd: SsoCommand) -> Answer {
    match cmd {
        SsoCommand::Idp(cmd) => idp(store, *cmd).await,
        SsoCommand::Outbox { email } => outbox(spec, store, email).await,
    }
}

async fn idp(store: &Store, cmd: IdpCommand) -> Answer {
    let now = store.now();
    match cmd {
        IdpCommand::Add(add) => {
            let IdpAdd {
                id,
                metadata,
                entity_id,
                sso_url,
                slo_url,
                certs,
                domains,
                insecure_any_domain,
                team,
                default_role,
                enterprise,
                allow_idp_initiated,
                require_mfa,
                mfa_contexts,
                sign_requests,
            } = *add;
            // The organisation must exist: a misspelt name would silently give no role.
            let team = match team {
                Some(name) => Some(
                    store
                        .team_by_name(&name)
                        .await
                        .map_err(fail)?
                        .ok_or_else(|| format!("no team {name} (identity admin team add)"))?,
                ),
                None => None,
            };
            if let Some(name) = &enterprise
                && store
                    .enterprise_by_name(name)
                    .await
                    .map_err(fail)?
                    .is_none()
            {
                return Err(format!(
                    "no enterprise account {name} (identity admin enterprise add)"
                ));
            }
            let default_role = match default_role.as_deref() {
                None => None,
                Some(r) => Some(
                    TeamRole::parse(r)
                        .ok_or("--default-role must be admin, member or collaborator")?,
                ),
            };
            let mut metadata_slo = None;
            let (entity_id, sso_url, certificates, want_signed) = match metadata {
                Some(path) => {
                    let m = sso_acs::saml::parse_idp_metadata(&read(&path)?)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    let certs = m
                        .certificates
                        .iter()
                        .map(|c| check_b64_cert(c, now))
                        .collect::<Result<Vec<_>, _>>()?;
                    metadata_slo = m.slo_url;
                    (m.entity_id, m.sso_url, certs, m.want_authn_requests_signed)
                }
                None => {
                    let (Some(e), Some(u)) = (entity_id, sso_url) else {
                        return Err(
                            "give --metadata FILE, or --entity-id, --sso-url and --cert".into()
                        );
                    };
                    let certs = certs
                        .iter()
                        .map(|p| cert_file(p, now))
                        .collect::<Result<Vec<_>, _>>()?;
                    (e, u, certs, false)
                }
            };
            if certificates.is_empty() {
                return Err("the IdP has no signing certificate".into());
            }
            let slo_url = match slo_url {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => Some(u),
                Some(u) => return Err(format!("--slo-url {u:?} is not an http(s) URL")),
                None => metadata_slo,
            };
            let domains = domains
                .iter()
                .map(|d| domain(d))
                .collect::<Result<Vec<_>, _>>()?;
            if domains.is_empty() && !insecure_any_domain {
                return Err(
                    "give the IdP its email domains (--domain D); an IdP asserts only its own"
                        .into(),
                );
            }
            let idp = Idp {
                team: team.as_ref().map(|t| t.name.clone()),
                enterprise,
                id,
                entity_id,
                sso_url,
                slo_url,
                certificates,
                domains,
                allow_idp_initiated,
                require_mfa,
                mfa_contexts,
                want_authn_requests_signed: want_signed || sign_requests,
                any_domain: insecure_any_domain,
                development: false,
                generation: String::new(),
                created_at: now,
                version: 1,
            };
            let idp = store.add_idp(&idp).await.map_err(fail)?;
            if let (Some(team), Some(role)) = (&team, default_role) {
                store
                    .set_team_default_role(team, role)
                    .await
                    .map_err(fail)?;
            }
            let text = format!(
                "added IdP {} ({}); SP metadata for it: {{base}}/sso/metadata",
                idp.id, idp.entity_id
            );
            Ok((idp.public_json(), text))
        }
        IdpCommand::SetCerts { id, certs } => {
            let certs = certs
                .iter()
                .map(|p| cert_file(p, now))
                .collect::<Result<Vec<_>, _>>()?;
            let idp = store.set_idp_certificates(&id, certs).await.map_err(fail)?;
            let text = format!(
                "IdP {} now has {} certificate(s)",
                idp.id,
                idp.certificates.len()
            );
            Ok((idp.public_json(), text))
        }
        IdpCommand::Show { id } => {
            let idp = store
                .idp(&id)
                .await
                .map_err(fail)?
                .ok_or_else(|| format!("no IdP {id}"))?;
            let text = serde_json::to_string_pretty(&idp.public_json()).map_err(fail)?;
            Ok((idp.public_json(), text))
        }
        IdpCommand::List => {
            let all = store.list_idps().await.map_err(fail)?;
            let text = all
                .iter()
                .map(|i| format!("{}\t{}\t{}", i.id, i.entity_id, i.domains.join(",")))
                .collect::<Vec<_>>()
                .join("\n");
            let list: Vec<Value> = all.iter().map(Idp::public_json).collect();
            Ok((json!({ "idps": list }), text))
        }
        IdpCommand::Remove { id } => {
            let (idp, released) = store
                .remove_idp(&id)
                .await
                .map_err(fail)?
                .ok_or_else(|| format!("no IdP {id}"))?;
            Ok((
                json!({ "removed": idp.id, "accounts_released": released }),
                format!(
                    "removed IdP {}; {released} account(s) are no longer under SSO",
                    idp.id
                ),
            ))
        }
    }
}

async fn outbox(spec: &StoreSpec, store: &Store, email: Option<String>) -> Answer {
    let email = email
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(fail)?;
    let state = super::admin_jwt::service_state(spec).await?;
    let keys = state.secrets.cookie_keys().await.map_err(fail)?;
    let messages = store.outbox(email.as_ref()).await.map_err(fail)?;
    let mut list = Vec::new();
    let mut text = Vec::new();
    for m in &messages {
        let body = m.body(&keys);
        let body = body.as_ref().map(|b| b.expose_secret().to_string());
        text.push(format!(
            "to {} at {}: {}\n{}",
            m.to,
            identity_shared::clock::rfc3339(m.created_at),
            m.subject,
            body.as_deref()
                .unwrap_or("(sealed with a key that is no longer current)")
        ));
        list.push(json!({
            "to": m.to,
            "subject": m.subject,
            "created_at": identity_shared::clock::rfc3339(m.created_at),
            "body": body,
        }));
    }
    Ok((json!({ "messages": list }), text.join("\n\n")))
}
