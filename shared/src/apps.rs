//! Apps and their people. An app has one owner and members with roles, and may belong to a
//! team, whose admins and members reach it too (`identity_core::org`); add-ons belong to
//! the app, so who may use them is read from here at request time.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use identity_core::org;

use crate::accounts::Account;
use crate::orgs::{OrgError, Orgs, Team};
use crate::store::{Cond, Item, Op, Store, StoreError, Table};

fn org_error(e: OrgError) -> AppError {
    match e {
        OrgError::Store(s) => AppError::Store(s),
        other => AppError::Store(StoreError::Corrupt(other.to_string())),
    }
}

pub use identity_core::sso::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub name: String,
    pub owner_account_id: String,
    /// The team that owns the app, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub account_id: String,
    pub email: String,
    pub role: Role,
}

impl Member {
    pub fn of(account: &Account, role: Role) -> Self {
        Self {
            account_id: account.id.to_string(),
            email: account.email.clone(),
            role,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("an app with this name already exists")]
    NameTaken,
    #[error("app names are 3 to 30 lowercase letters, digits and dashes, starting with a letter")]
    InvalidName,
    #[error("no such app")]
    NotFound,
    #[error("the app's owner cannot be removed or demoted; make someone else the owner first")]
    OwnerCannotBeRemoved,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn valid_app_name(name: &str) -> bool {
    org::valid_name(name)
}

fn app_pk(id: &str) -> String {
    format!("app#{id}")
}
fn member_sk(account_id: &str) -> String {
    format!("member#{account_id}")
}
fn account_apps_pk(account_id: &str) -> String {
    format!("account#{account_id}")
}

#[derive(Serialize, Deserialize)]
struct NamePointer {
    app_id: String,
}

#[derive(Serialize, Deserialize)]
struct Membership {
    app_id: String,
    role: Role,
}

#[async_trait]
pub trait Apps {
    async fn create_app(&self, name: &str, owner: &Account) -> Result<App, AppError> {
        self.create_team_app(name, owner, None).await
    }
    /// An app owned by `team` (when given), `owner` its first owner.
    async fn create_team_app(
        &self,
        name: &str,
        owner: &Account,
        team: Option<&Team>,
    ) -> Result<App, AppError>;
    async fn app(&self, id: &str) -> Result<Option<App>, AppError>;
    async fn app_by_name(&self, name: &str) -> Result<Option<App>, AppError>;
    /// Gives `account` the role on the app (adding or changing the membership). Giving
    /// `owner` to someone else transfers the app; the previous owner stays as an admin.
    async fn set_role(&self, app: &App, account: &Account, role: Role) -> Result<(), AppError>;
    /// Removes a member; `false` if they were not one. Their access ends at once.
    async fn remove_member(&self, app: &App, account_id: &str) -> Result<bool, AppError>;
    /// Everyone with a role on the app: its own members, and the admins and members of the
    /// team that owns it (each with the stronger of the two roles).
    async fn members(&self, app: &App) -> Result<Vec<Member>, AppError>;
    /// The account's role on the app, read from the store now (never cached): its own, or
    /// what its role on the app's team gives, the stronger of the two.
    async fn role_of(&self, app_id: &str, account_id: &str) -> Result<Option<Role>, AppError>;
    /// The apps an account holds a role on, with that role.
    async fn apps_of(&self, account_id: &str) -> Result<Vec<(String, Role)>, AppError>;
}

/// The two records of a membership: app → member and account → app.
fn membership_ops(app: &App, member: Member) -> Result<Vec<Op>, StoreError> {
    let back = Membership {
        app_id: app.id.clone(),
        role: member.role,
    };
    Ok(vec![
        Op::Put {
            table: Table::Apps,
            item: Item::new(account_apps_pk(&member.account_id), app_pk(&app.id), &back)?,
            cond: Cond::Always,
        },
        Op::Put {
            table: Table::Apps,
            item: Item::new(app_pk(&app.id), member_sk(&member.account_id), &member)?,
            cond: Cond::Always,
        },
    ])
}

#[async_trait]
impl Apps for Store {
    async fn create_team_app(
        &self,
        name: &str,
        owner: &Account,
        team: Option<&Team>,
    ) -> Result<App, AppError> {
        if !valid_app_name(name) {
            return Err(AppError::InvalidName);
        }
        let app = App {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            owner_account_id: owner.id.to_string(),
            team_id: team.map(|t| t.id.clone()),
            created_at: self.now(),
        };
        let mut ops = vec![
            Op::Put {
                table: Table::Apps,
                item: Item::new(
                    format!("appname#{name}"),
                    "appname",
                    &NamePointer {
                        app_id: app.id.clone(),
                    },
                )?,
                cond: Cond::Absent,
            },
            Op::Put {
                table: Table::Apps,
                item: Item::new(app_pk(&app.id), "app", &app)?,
                cond: Cond::Absent,
            },
        ];
        ops.extend(membership_ops(&app, Member::of(owner, Role::Owner))?);
        if let Some(team) = team {
            ops.push(Op::Check {
                table: Table::Apps,
                pk: format!("team#{}", team.id),
                sk: "team".into(),
                cond: Cond::Live,
            });
        }
        match self.write(ops).await {
            Ok(()) => Ok(app),
            Err(StoreError::Conflict) => Err(AppError::NameTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn app(&self, id: &str) -> Result<Option<App>, AppError> {
        Ok(self.get(Table::Apps, &app_pk(id), "app").await?)
    }

    async fn app_by_name(&self, name: &str) -> Result<Option<App>, AppError> {
        match self
            .get::<NamePointer>(Table::Apps, &format!("appname#{name}"), "appname")
            .await?
        {
            Some(p) => self.app(&p.app_id).await,
            None => Ok(None),
        }
    }

    async fn set_role(&self, app: &App, account: &Account, role: Role) -> Result<(), AppError> {
        if account.id == app.owner_account_id && role != Role::Owner {
            return Err(AppError::OwnerCannotBeRemoved);
        }
        let mut ops = Vec::new();
        if role == Role::Owner && account.id != app.owner_account_id {
            let moved = App {
                owner_account_id: account.id.to_string(),
                ..app.clone()
            };
            ops.push(Op::Put {
                table: Table::Apps,
                item: Item::new(app_pk(&app.id), "app", &moved)?,
                cond: Cond::Live,
            });
            let previous = self
                .get::<Member>(
                    Table::Apps,
                    &app_pk(&app.id),
                    &member_sk(&app.owner_account_id),
                )
                .await?;
            if let Some(previous) = previous {
                ops.extend(membership_ops(
                    app,
                    Member {
                        role: Role::Admin,
                        ..previous
                    },
                )?);
            }
        } else {
            ops.push(Op::Check {
                table: Table::Apps,
                pk: app_pk(&app.id),
                sk: "app".into(),
                cond: Cond::Live,
            });
        }
        ops.extend(membership_ops(app, Member::of(account, role))?);
        match self.write(ops).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(AppError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_member(&self, app: &App, account_id: &str) -> Result<bool, AppError> {
        if account_id == app.owner_account_id {
            return Err(AppError::OwnerCannotBeRemoved);
        }
        let ops = vec![
            Op::Delete {
                table: Table::Apps,
                pk: app_pk(&app.id),
                sk: member_sk(account_id),
                cond: Cond::Live,
            },
            Op::Delete {
                table: Table::Apps,
                pk: account_apps_pk(account_id),
                sk: app_pk(&app.id),
                cond: Cond::Always,
            },
        ];
        match self.write(ops).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn members(&self, app: &App) -> Result<Vec<Member>, AppError> {
        let mut members: Vec<Member> = self.query(Table::Apps, &app_pk(&app.id), "member#").await?;
        if let Some(team_id) = &app.team_id
            && let Some(team) = self.team(team_id).await.map_err(org_error)?
        {
            for t in self.team_members(&team).await.map_err(org_error)? {
                let Some(through) = org::app_role_through_team(t.role) else {
                    continue;
                };
                match members.iter_mut().find(|m| m.account_id == t.account_id) {
                    Some(m) => {
                        m.role = org::stronger(Some(m.role), Some(through)).unwrap_or(m.role)
                    }
                    None => members.push(Member {
                        account_id: t.account_id,
                        email: t.email,
                        role: through,
                    }),
                }
            }
        }
        members.sort_by(|a, b| (a.role, &a.email).cmp(&(b.role, &b.email)));
        Ok(members)
    }

    async fn role_of(&self, app_id: &str, account_id: &str) -> Result<Option<Role>, AppError> {
        let own = self
            .get::<Member>(Table::Apps, &app_pk(app_id), &member_sk(account_id))
            .await?
            .map(|m| m.role);
        if own == Some(Role::Owner) {
            return Ok(own);
        }
        let Some(team_id) = self.app(app_id).await?.and_then(|a| a.team_id) else {
            return Ok(own);
        };
        let through = self
            .team_role_of(&team_id, account_id)
            .await
            .map_err(org_error)?
            .and_then(org::app_role_through_team);
        Ok(org::stronger(own, through))
    }

    async fn apps_of(&self, account_id: &str) -> Result<Vec<(String, Role)>, AppError> {
        let list: Vec<Membership> = self
            .query(Table::Apps, &account_apps_pk(account_id), "app#")
            .await?;
        Ok(list.into_iter().map(|m| (m.app_id, m.role)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_follow_the_rule() {
        assert!(valid_app_name("my-app-1"));
        for bad in ["ab", "1app", "My-App", "a_b_c", &"a".repeat(31)] {
            assert!(!valid_app_name(bad), "{bad}");
        }
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::Owner, Role::Admin, Role::Member, Role::Collaborator] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("viewer"), None);
    }
}
