//! `identity admin team …` and `identity admin enterprise …`: organisations, their members
//! and what SSO gives them (`identity_core::org`). A child module of `admin`, sharing its
//! output conventions.

use clap::Subcommand;
use identity_shared::orgs::{self, Enterprise, Orgs, Permission, Team, TeamRole};
use identity_shared::store::Store;
use serde_json::json;

use super::{Failure, Output, account_by_email};

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team (optionally inside an enterprise account).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        enterprise: Option<String>,
        /// The role SSO gives newcomers and collaborators (default member).
        #[arg(long, value_parser = ["admin", "member", "collaborator"])]
        default_role: Option<String>,
    },
    /// Members: add (or change the role of) and remove.
    #[command(subcommand)]
    Member(TeamMemberCommand),
    /// Every member with role and SSO status (under SSO, not under SSO, pending, blocked).
    Members { team: String },
    /// Set the role SSO gives newcomers and collaborators.
    DefaultRole {
        team: String,
        #[arg(value_parser = ["admin", "member", "collaborator"])]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TeamMemberCommand {
    Add {
        team: String,
        email: String,
        #[arg(long, value_parser = ["admin", "member", "collaborator"])]
        role: String,
    },
    Remove {
        team: String,
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EnterpriseCommand {
    /// Create an enterprise account.
    Add {
        #[arg(long)]
        name: String,
    },
    /// Members: add (or change the permissions of).
    #[command(subcommand)]
    Member(EnterpriseMemberCommand),
    /// Every member with permissions and SSO status.
    Members { enterprise: String },
}

#[derive(Debug, Subcommand)]
pub enum EnterpriseMemberCommand {
    Add {
        enterprise: String,
        email: String,
        /// view, create, manage, billing; repeat for several.
        #[arg(long = "permission", required = true, num_args = 1.., value_parser = ["view", "create", "manage", "billing"])]
        permissions: Vec<String>,
    },
}

async fn team_named(store: &Store, name: &str) -> Result<Team, Failure> {
    store
        .team_by_name(name)
        .await?
        .ok_or_else(|| Failure(format!("no team {name}")))
}

async fn enterprise_named(store: &Store, name: &str) -> Result<Enterprise, Failure> {
    store
        .enterprise_by_name(name)
        .await?
        .ok_or_else(|| Failure(format!("no enterprise account {name}")))
}

fn role(s: &str) -> Result<TeamRole, Failure> {
    TeamRole::parse(s).ok_or_else(|| Failure(format!("no team role {s:?}")))
}

fn team_json(team: &Team) -> serde_json::Value {
    json!({
        "id": team.id,
        "name": team.name,
        "default_role": team.default_role,
        "enterprise_id": team.enterprise_id,
    })
}

fn members_output(kind: &str, name: &str, view: Vec<orgs::MemberView>) -> Output {
    let text = view
        .iter()
        .map(orgs::MemberView::line)
        .collect::<Vec<_>>()
        .join("\n");
    Output {
        json: json!({ kind: name, "members": view }),
        text,
    }
}

pub async fn team(store: &Store, cmd: TeamCommand) -> Result<Output, Failure> {
    match cmd {
        TeamCommand::Add {
            name,
            enterprise,
            default_role,
        } => {
            let enterprise = match enterprise {
                Some(e) => Some(enterprise_named(store, &e).await?),
                None => None,
            };
            let mut team = store.create_team(&name, enterprise.as_ref()).await?;
            if let Some(r) = default_role {
                team = store.set_team_default_role(&team, role(&r)?).await?;
            }
            Ok(Output {
                text: format!("created team {} ({})", team.name, team.id),
                json: team_json(&team),
            })
        }
        TeamCommand::Member(TeamMemberCommand::Add {
            team,
            email,
            role: r,
        }) => {
            let team = team_named(store, &team).await?;
            let account = account_by_email(store, &email).await?;
            let r = role(&r)?;
            store.set_team_role(&team, &account, r).await?;
            Ok(Output {
                text: format!(
                    "{} is now {} on team {}",
                    account.email,
                    r.as_str(),
                    team.name
                ),
                json: json!({ "team": team.name, "email": account.email, "role": r }),
            })
        }
        TeamCommand::Member(TeamMemberCommand::Remove { team, email }) => {
            let team = team_named(store, &team).await?;
            let account = account_by_email(store, &email).await?;
            if !store.remove_team_member(&team, &account.id).await? {
                return Err(Failure(format!(
                    "{} is not a member of team {}",
                    account.email, team.name
                )));
            }
            Ok(Output {
                text: format!("removed {} from team {}", account.email, team.name),
                json: json!({ "team": team.name, "removed": account.email }),
            })
        }
        TeamCommand::Members { team } => {
            let team = team_named(store, &team).await?;
            let view = orgs::team_view(store, &team).await?;
            Ok(members_output("team", &team.name, view))
        }
        TeamCommand::DefaultRole { team, role: r } => {
            let team = team_named(store, &team).await?;
            let team = store.set_team_default_role(&team, role(&r)?).await?;
            Ok(Output {
                text: format!(
                    "SSO now gives newcomers and collaborators of team {} the role {}",
                    team.name,
                    team.default_role.as_str()
                ),
                json: team_json(&team),
            })
        }
    }
}

pub async fn enterprise(store: &Store, cmd: EnterpriseCommand) -> Result<Output, Failure> {
    match cmd {
        EnterpriseCommand::Add { name } => {
            let e = store.create_enterprise(&name).await?;
            Ok(Output {
                text: format!("created enterprise account {} ({})", e.name, e.id),
                json: json!({ "id": e.id, "name": e.name }),
            })
        }
        EnterpriseCommand::Member(EnterpriseMemberCommand::Add {
            enterprise,
            email,
            permissions,
        }) => {
            let e = enterprise_named(store, &enterprise).await?;
            let account = account_by_email(store, &email).await?;
            let permissions: Vec<Permission> = permissions
                .iter()
                .filter_map(|p| Permission::parse(p))
                .collect();
            store.set_permissions(&e, &account, &permissions).await?;
            let held = store
                .permissions_of(&e.id, &account.id)
                .await?
                .unwrap_or_default();
            Ok(Output {
                text: format!(
                    "{} now holds {} on {}",
                    account.email,
                    held.iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    e.name
                ),
                json: json!({ "enterprise": e.name, "email": account.email, "permissions": held }),
            })
        }
        EnterpriseCommand::Members { enterprise } => {
            let e = enterprise_named(store, &enterprise).await?;
            let view = orgs::enterprise_view(store, &e).await?;
            Ok(members_output("enterprise", &e.name, view))
        }
    }
}
