//! Apps and their people, as records and as the rules of changing them: one owner, members
//! with roles (`crate::role`), perhaps a team that owns the app (`crate::org`). In the apps
//! table: `app#{id}` / `app`, `appname#{name}` / `appname`, `app#{id}` / `member#{account}`
//! and the account's side `account#{account}` / `app#{id}`.

use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::plan::Plan;
use crate::role::Role;
use crate::store::{Cond, Item, Op, StoreError, Table, record};

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

/// Why a change to an app was refused.
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
    crate::org::valid_name(name)
}

pub fn app_pk(id: &str) -> String {
    format!("app#{id}")
}
pub fn member_sk(account_id: &str) -> String {
    format!("member#{account_id}")
}
pub fn account_apps_pk(account_id: &str) -> String {
    format!("account#{account_id}")
}
pub fn name_pk(name: &str) -> String {
    format!("appname#{name}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamePointer {
    pub app_id: String,
}

/// The account's side of a membership.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    pub app_id: String,
    pub role: Role,
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

/// A new app `name` (`id` fresh), `owner` its first owner, of `team` while the team exists;
/// a conflict is a taken name.
pub fn create(
    name: &str,
    owner: &Account,
    team_id: Option<&str>,
    id: String,
    now: i64,
) -> Result<Plan<App>, AppError> {
    if !valid_app_name(name) {
        return Err(AppError::InvalidName);
    }
    let app = App {
        id,
        name: name.to_string(),
        owner_account_id: owner.id.to_string(),
        team_id: team_id.map(str::to_string),
        created_at: now,
    };
    let pointer = NamePointer {
        app_id: app.id.clone(),
    };
    let mut ops = vec![
        Op::Put {
            table: Table::Apps,
            item: Item::new(name_pk(name), "appname", &pointer)?,
            cond: Cond::Absent,
        },
        Op::Put {
            table: Table::Apps,
            item: Item::new(app_pk(&app.id), "app", &app)?,
            cond: Cond::Absent,
        },
    ];
    ops.extend(membership_ops(&app, Member::of(owner, Role::Owner))?);
    if let Some(team_id) = team_id {
        let team = crate::org::team_pk(team_id);
        ops.push(record::require_live(Table::Apps, team, "team".into()));
    }
    Ok(Plan::write(ops, app))
}

/// `account` gets `role` on the app. Giving `owner` to someone else moves the app to them
/// and keeps the previous owner (`previous_owner`, their membership as loaded) as an admin;
/// the owner is never demoted. A conflict is an app gone.
pub fn set_role(
    app: &App,
    account: &Account,
    role: Role,
    previous_owner: Option<Member>,
) -> Result<Plan<()>, AppError> {
    let is_owner = account.id == app.owner_account_id;
    if is_owner && role != Role::Owner {
        return Err(AppError::OwnerCannotBeRemoved);
    }
    let mut ops = Vec::new();
    if role == Role::Owner && !is_owner {
        let moved = App {
            owner_account_id: account.id.to_string(),
            ..app.clone()
        };
        ops.push(Op::Put {
            table: Table::Apps,
            item: Item::new(app_pk(&app.id), "app", &moved)?,
            cond: Cond::Live,
        });
        if let Some(previous) = previous_owner {
            let admin = Member {
                role: Role::Admin,
                ..previous
            };
            ops.extend(membership_ops(app, admin)?);
        }
    } else {
        ops.push(record::require_live(
            Table::Apps,
            app_pk(&app.id),
            "app".into(),
        ));
    }
    ops.extend(membership_ops(app, Member::of(account, role))?);
    Ok(Plan::write(ops, ()))
}

/// Whether `set_role` moves the app, so the previous owner's membership is to be loaded.
pub fn transfers(app: &App, account: &Account, role: Role) -> bool {
    role == Role::Owner && account.id != app.owner_account_id
}

/// The member leaves the app (both sides); never its owner. A conflict: not a member.
pub fn remove_member(app: &App, account_id: &str) -> Result<Plan<()>, AppError> {
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
    Ok(Plan::write(ops, ()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountStatus, Email, new_account};

    fn person(id: &str) -> Account {
        let email = Email::parse(&format!("{id}@example.com")).unwrap();
        new_account(id, &email, None, AccountStatus::Active, None, 0)
    }

    fn app() -> App {
        create("shop", &person("owner"), None, "app-1".into(), 0)
            .unwrap()
            .outcome
    }

    #[test]
    fn app_names_follow_the_rule() {
        assert!(valid_app_name("my-app-1"));
        for bad in ["ab", "1app", "My-App", "a_b_c", &"a".repeat(31)] {
            assert!(!valid_app_name(bad), "{bad}");
            assert!(matches!(
                create(bad, &person("o"), None, "x".into(), 0),
                Err(AppError::InvalidName)
            ));
        }
    }

    #[test]
    fn a_new_app_has_its_owner_and_a_new_name() {
        let plan = create("shop", &person("owner"), Some("t1"), "app-1".into(), 7).unwrap();
        assert_eq!(plan.outcome.owner_account_id, "owner");
        assert_eq!(plan.outcome.team_id.as_deref(), Some("t1"));
        // Name, app, two membership sides, the team's check.
        assert_eq!(plan.ops.len(), 5);
    }

    #[test]
    fn the_owner_cannot_be_demoted_or_removed() {
        let app = app();
        let owner = person("owner");
        assert!(matches!(
            set_role(&app, &owner, Role::Admin, None),
            Err(AppError::OwnerCannotBeRemoved)
        ));
        assert!(matches!(
            remove_member(&app, "owner"),
            Err(AppError::OwnerCannotBeRemoved)
        ));
        assert!(set_role(&app, &owner, Role::Owner, None).is_ok());
    }

    #[test]
    fn giving_owner_to_someone_else_moves_the_app_and_keeps_the_previous_owner_as_admin() {
        let app = app();
        let next = person("next");
        assert!(transfers(&app, &next, Role::Owner));
        let previous = Member::of(&person("owner"), Role::Owner);
        let plan = set_role(&app, &next, Role::Owner, Some(previous)).unwrap();
        let admin = plan.ops.iter().any(|op| match op {
            Op::Put { item, .. } if item.sk == member_sk("owner") => {
                item.parse::<Member>().unwrap().role == Role::Admin
            }
            _ => false,
        });
        assert!(admin, "{:?}", plan.ops);
        let moved = plan.ops.iter().any(|op| match op {
            Op::Put { item, .. } if item.sk == "app" => {
                item.parse::<App>().unwrap().owner_account_id == "next"
            }
            _ => false,
        });
        assert!(moved);
    }
}
