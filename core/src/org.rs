//! Organisations: teams and enterprise accounts, and what single sign-on does to their
//! members, sentence by sentence from the seeds.
//!
//! - A team has members with roles (`admin`, `member`, `collaborator`) and owns apps; its
//!   admins and members reach every app of the team, collaborators only the apps they are
//!   added to ([`app_role_through_team`]).
//! - "Signing in via SSO does not change an existing member's team role, except that a
//!   collaborator signing in via SSO to the team gets the team's default role"; a new SSO
//!   user joins with the default role (configurable by a team admin, `member` unless set)
//!   ([`team_role_on_sso`]).
//! - "The default SSO permission level for Enterprise Accounts is view and is not
//!   configurable", and an existing member's permissions never change through SSO
//!   ([`enterprise_permissions_on_sso`]).

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::store::{Cond, Item, Op, StoreError, Table};

use crate::role::Role;

/// Names of apps, teams and enterprise accounts: 3 to 30 lowercase letters, digits and
/// dashes, a letter first.
pub fn valid_name(name: &str) -> bool {
    (3..=30).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A role on a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum TeamRole {
    Admin,
    Member,
    Collaborator,
}

impl TeamRole {
    pub fn parse(s: &str) -> Option<TeamRole> {
        match s {
            "admin" => Some(TeamRole::Admin),
            "member" => Some(TeamRole::Member),
            "collaborator" => Some(TeamRole::Collaborator),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Admin => "admin",
            TeamRole::Member => "member",
            TeamRole::Collaborator => "collaborator",
        }
    }
}

/// The team's default SSO role when no team admin has set one.
pub const DEFAULT_TEAM_SSO_ROLE: TeamRole = TeamRole::Member;

/// A permission on an enterprise account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    View,
    Create,
    Manage,
    Billing,
}

impl Permission {
    pub fn parse(s: &str) -> Option<Permission> {
        match s {
            "view" => Some(Permission::View),
            "create" => Some(Permission::Create),
            "manage" => Some(Permission::Manage),
            "billing" => Some(Permission::Billing),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::View => "view",
            Permission::Create => "create",
            Permission::Manage => "manage",
            Permission::Billing => "billing",
        }
    }
}

/// The permissions an SSO login gives on an enterprise account: `view` (not configurable)
/// to someone who is not a member; nothing to a member, whatever they hold.
pub fn enterprise_permissions_on_sso(current: Option<&[Permission]>) -> Option<Vec<Permission>> {
    match current {
        None => Some(vec![Permission::View]),
        Some(_) => None,
    }
}

/// The team role an SSO login gives: the team's default role to someone who is not a
/// member, and to a collaborator; nothing to an admin or a member (their role stays).
pub fn team_role_on_sso(current: Option<TeamRole>, default: TeamRole) -> Option<TeamRole> {
    match current {
        None => Some(default),
        Some(TeamRole::Collaborator) if default != TeamRole::Collaborator => Some(default),
        Some(_) => None,
    }
}

/// The role a team role gives on each of the team's apps: admins and members reach them
/// all; a collaborator only the apps they are added to (none through the team).
pub fn app_role_through_team(team_role: TeamRole) -> Option<Role> {
    match team_role {
        TeamRole::Admin => Some(Role::Admin),
        TeamRole::Member => Some(Role::Member),
        TeamRole::Collaborator => None,
    }
}

/// The stronger of two app roles (`Owner` strongest).
pub fn stronger(a: Option<Role>, b: Option<Role>) -> Option<Role> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Whether an organisation's administrator may block (or unblock) an account: it must be a
/// member of the organisation, and belong to it through single sign-on: under one of the
/// organisation's IdPs, or of an email domain one of them owns. An organisation never
/// blocks a collaborator who signs in elsewhere ("your company can block access to that
/// account").
pub fn may_block(is_member: bool, under_orgs_idp: bool, domain_of_orgs_idp: bool) -> bool {
    is_member && (under_orgs_idp || domain_of_orgs_idp)
}

/// Whether an organisation may lift a block: only one it made itself (an operator's block,
/// or another organisation's, stays).
pub fn may_unblock(blocked_by: Option<&str>, org: &str) -> bool {
    blocked_by == Some(org)
}

/// A member's SSO status as an organisation's administrators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SsoStatus {
    /// Signs in through the organisation's IdP.
    UnderSso,
    /// Declined the upgrade, or never signed in through SSO.
    NotUnderSso,
    /// First SSO login done, welcome link not yet followed.
    Pending,
    /// Blocked: signs in nowhere.
    Blocked,
}

impl SsoStatus {
    /// From what the account says: blocked first, then pending, then under SSO or not.
    pub fn of(blocked: bool, pending: bool, under_sso: bool) -> Self {
        if blocked {
            SsoStatus::Blocked
        } else if pending {
            SsoStatus::Pending
        } else if under_sso {
            SsoStatus::UnderSso
        } else {
            SsoStatus::NotUnderSso
        }
    }

    /// As the administrator's listing says it.
    pub fn as_str(self) -> &'static str {
        match self {
            SsoStatus::UnderSso => "under SSO",
            SsoStatus::NotUnderSso => "not under SSO",
            SsoStatus::Pending => "pending",
            SsoStatus::Blocked => "blocked",
        }
    }
}

// The records, in the apps table: `team#{id}` / `team`, `teamname#{name}` / `teamname`,
// `team#{id}` / `member#{account}` and the account's side `account#{account}` /
// `team#{id}`; `enterprise#{id}` / `enterprise`, `enterprisename#{name}` /
// `enterprisename`, `enterprise#{id}` / `member#{account}`.

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    /// The role an SSO login gives newcomers and collaborators (set by a team admin).
    pub default_role: TeamRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_id: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    pub account_id: String,
    pub email: String,
    pub role: TeamRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enterprise {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseMember {
    pub account_id: String,
    pub email: String,
    pub permissions: Vec<Permission>,
}

pub fn team_pk(id: &str) -> String {
    format!("team#{id}")
}
pub fn enterprise_pk(id: &str) -> String {
    format!("enterprise#{id}")
}
pub fn member_sk(account_id: &str) -> String {
    format!("member#{account_id}")
}
pub fn account_pk(account_id: &str) -> String {
    format!("account#{account_id}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamePointer {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamMembership {
    pub team_id: String,
    pub role: TeamRole,
}

/// The writes that give `account` `role` on `team` (both sides), for callers that do so
/// inside a larger atomic write (an SSO login).
pub fn team_member_ops(
    team: &Team,
    account: &crate::account::Account,
    role: TeamRole,
) -> Result<Vec<Op>, StoreError> {
    let member = TeamMember {
        account_id: account.id.to_string(),
        email: account.email.clone(),
        role,
    };
    Ok(vec![
        Op::Put {
            table: Table::Apps,
            item: Item::new(team_pk(&team.id), member_sk(&member.account_id), &member)?,
            cond: Cond::Always,
        },
        Op::Put {
            table: Table::Apps,
            item: Item::new(
                account_pk(&member.account_id),
                team_pk(&team.id),
                &TeamMembership {
                    team_id: team.id.clone(),
                    role,
                },
            )?,
            cond: Cond::Always,
        },
    ])
}

/// The write that gives `account` `permissions` on `enterprise`.
pub fn enterprise_member_op(
    enterprise: &Enterprise,
    account: &crate::account::Account,
    permissions: &[Permission],
) -> Result<Op, StoreError> {
    let mut permissions = permissions.to_vec();
    permissions.sort();
    permissions.dedup();
    let member = EnterpriseMember {
        account_id: account.id.to_string(),
        email: account.email.clone(),
        permissions,
    };
    Ok(Op::Put {
        table: Table::Apps,
        item: Item::new(
            enterprise_pk(&enterprise.id),
            member_sk(&member.account_id),
            &member,
        )?,
        cond: Cond::Always,
    })
}

/// Why an organisation change was refused.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("a team or enterprise account with this name already exists")]
    NameTaken,
    #[error("names are 3 to 30 lowercase letters, digits and dashes, starting with a letter")]
    InvalidName,
    #[error("no such team or enterprise account")]
    NotFound,
    #[error("give at least one permission (view, create, manage, billing)")]
    NoPermission,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The pointer from a name to its team or enterprise account (`kind`): new, so a taken name
/// fails the write.
fn name_op(kind: &str, name: &str, id: &str) -> Result<Op, StoreError> {
    Ok(Op::Put {
        table: Table::Apps,
        item: Item::new(
            format!("{kind}name#{name}"),
            format!("{kind}name"),
            &NamePointer { id: id.to_string() },
        )?,
        cond: Cond::Absent,
    })
}

/// The write holds only while the record `pk` / `sk` of the apps table is live.
fn still_there(pk: String, sk: &str) -> Op {
    crate::store::record::require_live(Table::Apps, pk, sk.into())
}

/// A new team `name` (`id` fresh), of `enterprise` while it exists; a conflict is a taken
/// name.
pub fn create_team(
    name: &str,
    enterprise: Option<&Enterprise>,
    id: String,
    now: i64,
) -> Result<Plan<Team>, OrgError> {
    if !valid_name(name) {
        return Err(OrgError::InvalidName);
    }
    let team = Team {
        id,
        name: name.to_string(),
        default_role: DEFAULT_TEAM_SSO_ROLE,
        enterprise_id: enterprise.map(|e| e.id.clone()),
        created_at: now,
    };
    let mut ops = vec![
        name_op("team", name, &team.id)?,
        Op::Put {
            table: Table::Apps,
            item: Item::new(team_pk(&team.id), "team", &team)?,
            cond: Cond::Absent,
        },
    ];
    if let Some(e) = enterprise {
        ops.push(still_there(enterprise_pk(&e.id), "enterprise"));
    }
    Ok(Plan::write(ops, team))
}

/// The team with a new SSO default role; a conflict is a team gone.
pub fn set_team_default_role(team: &Team, role: TeamRole) -> Result<Plan<Team>, StoreError> {
    let changed = Team {
        default_role: role,
        ..team.clone()
    };
    let op = Op::Put {
        table: Table::Apps,
        item: Item::new(team_pk(&team.id), "team", &changed)?,
        cond: Cond::Live,
    };
    Ok(Plan::write(vec![op], changed))
}

/// `account` holds `role` on the team; a conflict is a team gone.
pub fn set_team_role(
    team: &Team,
    account: &crate::account::Account,
    role: TeamRole,
) -> Result<Plan<()>, StoreError> {
    let mut ops = team_member_ops(team, account, role)?;
    ops.push(still_there(team_pk(&team.id), "team"));
    Ok(Plan::write(ops, ()))
}

/// The member leaves the team (both sides); a conflict: they were not one.
pub fn remove_team_member(team: &Team, account_id: &str) -> Plan<()> {
    Plan::write(
        vec![
            Op::Delete {
                table: Table::Apps,
                pk: team_pk(&team.id),
                sk: member_sk(account_id),
                cond: Cond::Live,
            },
            Op::Delete {
                table: Table::Apps,
                pk: account_pk(account_id),
                sk: team_pk(&team.id),
                cond: Cond::Always,
            },
        ],
        (),
    )
}

/// A new enterprise account `name` (`id` fresh); a conflict is a taken name.
pub fn create_enterprise(name: &str, id: String, now: i64) -> Result<Plan<Enterprise>, OrgError> {
    if !valid_name(name) {
        return Err(OrgError::InvalidName);
    }
    let enterprise = Enterprise {
        id,
        name: name.to_string(),
        created_at: now,
    };
    let ops = vec![
        name_op("enterprise", name, &enterprise.id)?,
        Op::Put {
            table: Table::Apps,
            item: Item::new(enterprise_pk(&enterprise.id), "enterprise", &enterprise)?,
            cond: Cond::Absent,
        },
    ];
    Ok(Plan::write(ops, enterprise))
}

/// `account` holds exactly `permissions` (at least one) on the enterprise account; a
/// conflict is an enterprise account gone.
pub fn set_permissions(
    enterprise: &Enterprise,
    account: &crate::account::Account,
    permissions: &[Permission],
) -> Result<Plan<()>, OrgError> {
    if permissions.is_empty() {
        return Err(OrgError::NoPermission);
    }
    let ops = vec![
        enterprise_member_op(enterprise, account, permissions)?,
        still_there(enterprise_pk(&enterprise.id), "enterprise"),
    ];
    Ok(Plan::write(ops, ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_in_via_sso_does_not_change_an_existing_members_team_role() {
        for held in [TeamRole::Admin, TeamRole::Member] {
            for default in [TeamRole::Admin, TeamRole::Member, TeamRole::Collaborator] {
                assert_eq!(team_role_on_sso(Some(held), default), None, "{held:?}");
            }
        }
    }

    #[test]
    fn a_collaborator_signing_in_via_sso_gets_the_teams_default_role() {
        assert_eq!(
            team_role_on_sso(Some(TeamRole::Collaborator), TeamRole::Member),
            Some(TeamRole::Member)
        );
        assert_eq!(
            team_role_on_sso(Some(TeamRole::Collaborator), TeamRole::Admin),
            Some(TeamRole::Admin)
        );
        assert_eq!(
            team_role_on_sso(Some(TeamRole::Collaborator), TeamRole::Collaborator),
            None,
            "nothing to write"
        );
    }

    #[test]
    fn a_new_sso_user_joins_with_the_default_role() {
        assert_eq!(
            team_role_on_sso(None, DEFAULT_TEAM_SSO_ROLE),
            Some(TeamRole::Member)
        );
        assert_eq!(
            team_role_on_sso(None, TeamRole::Collaborator),
            Some(TeamRole::Collaborator)
        );
    }

    #[test]
    fn the_enterprise_sso_permission_is_view_and_never_changes_a_member() {
        assert_eq!(
            enterprise_permissions_on_sso(None),
            Some(vec![Permission::View])
        );
        assert_eq!(
            enterprise_permissions_on_sso(Some(&[Permission::Manage])),
            None
        );
        assert_eq!(enterprise_permissions_on_sso(Some(&[])), None);
    }

    #[test]
    fn team_admins_and_members_reach_the_teams_apps_collaborators_do_not() {
        assert_eq!(app_role_through_team(TeamRole::Admin), Some(Role::Admin));
        assert_eq!(app_role_through_team(TeamRole::Member), Some(Role::Member));
        assert_eq!(app_role_through_team(TeamRole::Collaborator), None);
        assert_eq!(
            stronger(Some(Role::Collaborator), Some(Role::Admin)),
            Some(Role::Admin)
        );
        assert_eq!(stronger(None, Some(Role::Member)), Some(Role::Member));
        assert_eq!(stronger(Some(Role::Owner), None), Some(Role::Owner));
    }

    #[test]
    fn an_organisation_blocks_only_its_own_sso_people_and_lifts_only_its_own_blocks() {
        assert!(may_block(true, true, false));
        assert!(may_block(true, false, true));
        assert!(
            !may_block(true, false, false),
            "a collaborator from elsewhere"
        );
        assert!(!may_block(false, true, true), "not a member");
        assert!(may_unblock(Some("team acme"), "team acme"));
        assert!(!may_unblock(None, "team acme"), "the operator's block");
        assert!(!may_unblock(Some("team globex"), "team acme"));
    }

    #[test]
    fn the_administrators_view_names_each_status() {
        assert_eq!(SsoStatus::of(true, true, true), SsoStatus::Blocked);
        assert_eq!(SsoStatus::of(false, true, true), SsoStatus::Pending);
        assert_eq!(SsoStatus::of(false, false, true), SsoStatus::UnderSso);
        assert_eq!(SsoStatus::of(false, false, false), SsoStatus::NotUnderSso);
        assert_eq!(SsoStatus::NotUnderSso.as_str(), "not under SSO");
    }

    fn account() -> crate::account::Account {
        let email = crate::account::Email::parse("a@example.com").unwrap();
        crate::account::new_account(
            "a1",
            &email,
            None,
            crate::account::AccountStatus::Active,
            None,
            0,
        )
    }

    #[test]
    fn a_team_or_enterprise_name_follows_the_naming_rule() {
        assert!(matches!(
            create_team("No", None, "t".into(), 0),
            Err(OrgError::InvalidName)
        ));
        assert!(matches!(
            create_enterprise("1acme", "e".into(), 0),
            Err(OrgError::InvalidName)
        ));
        let plan = create_team("acme", None, "t".into(), 5).unwrap();
        assert_eq!(plan.outcome.default_role, DEFAULT_TEAM_SSO_ROLE);
        assert!(plan.ops.iter().all(|op| matches!(
            op,
            Op::Put {
                cond: Cond::Absent,
                ..
            }
        )));
    }

    #[test]
    fn a_team_of_an_enterprise_is_made_only_while_the_enterprise_exists() {
        let e = Enterprise {
            id: "e".into(),
            name: "corp".into(),
            created_at: 0,
        };
        let plan = create_team("acme", Some(&e), "t".into(), 5).unwrap();
        assert_eq!(plan.outcome.enterprise_id.as_deref(), Some("e"));
        assert!(
            plan.ops
                .contains(&still_there(enterprise_pk("e"), "enterprise"))
        );
    }

    #[test]
    fn enterprise_permissions_are_never_empty_and_need_the_enterprise() {
        let e = Enterprise {
            id: "e".into(),
            name: "corp".into(),
            created_at: 0,
        };
        assert!(matches!(
            set_permissions(&e, &account(), &[]),
            Err(OrgError::NoPermission)
        ));
        let plan = set_permissions(&e, &account(), &[Permission::View]).unwrap();
        assert!(
            plan.ops
                .contains(&still_there(enterprise_pk("e"), "enterprise"))
        );
    }

    #[test]
    fn a_team_role_is_written_on_both_sides_while_the_team_exists() {
        let team = create_team("acme", None, "t".into(), 0).unwrap().outcome;
        let plan = set_team_role(&team, &account(), TeamRole::Admin).unwrap();
        assert_eq!(plan.ops.len(), 3);
        assert!(plan.ops.contains(&still_there(team_pk("t"), "team")));
        assert_eq!(remove_team_member(&team, "a1").ops.len(), 2);
    }
}
