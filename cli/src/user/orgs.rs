//! `identity team …` and `identity enterprise …`: an organisation administrator's commands
//! over the server's API (`/teams/{team}/…`, `/enterprises/{enterprise}/…`), with the
//! person's login or an API key.

use clap::Subcommand;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Failure, Target, call, expect, segment, text};

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Every member with role and SSO status.
    Members {
        team: String,
        #[command(flatten)]
        target: Target,
    },
    /// Block one of the team's SSO people: their sessions, tokens and API keys end.
    Block {
        team: String,
        email: String,
        #[command(flatten)]
        target: Target,
    },
    /// Lift a block the team made.
    Unblock {
        team: String,
        email: String,
        #[command(flatten)]
        target: Target,
    },
    /// Set the role SSO gives newcomers and collaborators (admin, member, collaborator).
    SsoRole {
        team: String,
        #[arg(value_parser = ["admin", "member", "collaborator"])]
        role: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
pub enum EnterpriseCommand {
    /// Every member with permissions and SSO status.
    Members {
        enterprise: String,
        #[command(flatten)]
        target: Target,
    },
    /// Block one of the enterprise account's SSO people.
    Block {
        enterprise: String,
        email: String,
        #[command(flatten)]
        target: Target,
    },
    /// Lift a block the enterprise account made.
    Unblock {
        enterprise: String,
        email: String,
        #[command(flatten)]
        target: Target,
    },
}

fn print_members(answer: &Value) {
    for m in answer["members"].as_array().cloned().unwrap_or_default() {
        let held = match m["role"].as_str() {
            Some(r) => r.to_string(),
            None => m["permissions"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        };
        println!(
            "{}  {held}  {}",
            text(&m, "email"),
            text(&m, "sso_status")
                .replace('_', " ")
                .replace("sso", "SSO")
        );
    }
}

async fn members(kind: &str, name: &str, target: &Target) -> Result<(), Failure> {
    let path = format!("/{kind}/{}/members", segment(name));
    let a = call(target, Method::GET, &path, None).await?;
    expect(&a, StatusCode::OK, "could not list the members")?;
    print_members(&a.json);
    Ok(())
}

async fn block(
    kind: &str,
    name: &str,
    email: &str,
    on: bool,
    target: &Target,
) -> Result<(), Failure> {
    let verb = if on { "block" } else { "unblock" };
    let path = format!(
        "/{kind}/{}/members/{}/{verb}",
        segment(name),
        segment(email)
    );
    let a = call(target, Method::POST, &path, None).await?;
    expect(&a, StatusCode::OK, &format!("could not {verb} {email}"))?;
    println!("{} {email}", if on { "Blocked" } else { "Unblocked" });
    Ok(())
}

pub async fn team(cmd: TeamCommand) -> Result<(), Failure> {
    match cmd {
        TeamCommand::Members { team, target } => members("teams", &team, &target).await,
        TeamCommand::Block {
            team,
            email,
            target,
        } => block("teams", &team, &email, true, &target).await,
        TeamCommand::Unblock {
            team,
            email,
            target,
        } => block("teams", &team, &email, false, &target).await,
        TeamCommand::SsoRole { team, role, target } => {
            let path = format!("/teams/{}/sso", segment(&team));
            let a = call(
                &target,
                Method::PUT,
                &path,
                Some(&json!({ "default_role": role })),
            )
            .await?;
            expect(&a, StatusCode::OK, "could not set the SSO role")?;
            println!(
                "SSO now gives newcomers and collaborators of {team} the role {}",
                text(&a.json, "default_role")
            );
            Ok(())
        }
    }
}

pub async fn enterprise(cmd: EnterpriseCommand) -> Result<(), Failure> {
    match cmd {
        EnterpriseCommand::Members { enterprise, target } => {
            members("enterprises", &enterprise, &target).await
        }
        EnterpriseCommand::Block {
            enterprise,
            email,
            target,
        } => block("enterprises", &enterprise, &email, true, &target).await,
        EnterpriseCommand::Unblock {
            enterprise,
            email,
            target,
        } => block("enterprises", &enterprise, &email, false, &target).await,
    }
}
