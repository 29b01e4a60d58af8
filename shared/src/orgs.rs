//! Organisations: teams (members with roles, apps they own) and enterprise accounts
//! (teams, members with permissions). The rules are `identity_core::org`'s; this module
//! keeps the records, in the apps table:
//!
//! - `team#{id}` / `team`, `teamname#{name}` / `teamname`, `team#{id}` / `member#{account}`,
//!   and the account's side `account#{account}` / `team#{id}`;
//! - `enterprise#{id}` / `enterprise`, `enterprisename#{name}` / `enterprisename`,
//!   `enterprise#{id}` / `member#{account}`.

use async_trait::async_trait;
use identity_core::org;
use serde::Serialize;

use crate::accounts::{Account, AccountStatus, Accounts};
use crate::store::{Store, Table, conflict_as};

pub use identity_core::org::{
    Enterprise, EnterpriseMember, NamePointer, OrgError, Permission, SsoStatus, Team, TeamMember,
    TeamMembership, TeamRole, account_pk, enterprise_member_op, enterprise_pk, member_sk,
    team_member_ops, team_pk,
};

#[async_trait]
pub trait Orgs {
    async fn create_team(
        &self,
        name: &str,
        enterprise: Option<&Enterprise>,
    ) -> Result<Team, OrgError>;
    async fn team(&self, id: &str) -> Result<Option<Team>, OrgError>;
    async fn team_by_name(&self, name: &str) -> Result<Option<Team>, OrgError>;
    /// Sets the role an SSO login gives newcomers and collaborators.
    async fn set_team_default_role(&self, team: &Team, role: TeamRole) -> Result<Team, OrgError>;
    async fn set_team_role(
        &self,
        team: &Team,
        account: &Account,
        role: TeamRole,
    ) -> Result<(), OrgError>;
    async fn remove_team_member(&self, team: &Team, account_id: &str) -> Result<bool, OrgError>;
    async fn team_members(&self, team: &Team) -> Result<Vec<TeamMember>, OrgError>;
    /// The account's role on the team, read now.
    async fn team_role_of(
        &self,
        team_id: &str,
        account_id: &str,
    ) -> Result<Option<TeamRole>, OrgError>;
    async fn create_enterprise(&self, name: &str) -> Result<Enterprise, OrgError>;
    async fn enterprise(&self, id: &str) -> Result<Option<Enterprise>, OrgError>;
    async fn enterprise_by_name(&self, name: &str) -> Result<Option<Enterprise>, OrgError>;
    async fn set_permissions(
        &self,
        enterprise: &Enterprise,
        account: &Account,
        permissions: &[Permission],
    ) -> Result<(), OrgError>;
    async fn enterprise_members(
        &self,
        enterprise: &Enterprise,
    ) -> Result<Vec<EnterpriseMember>, OrgError>;
    async fn permissions_of(
        &self,
        enterprise_id: &str,
        account_id: &str,
    ) -> Result<Option<Vec<Permission>>, OrgError>;
}

#[async_trait]
impl Orgs for Store {
    async fn create_team(
        &self,
        name: &str,
        enterprise: Option<&Enterprise>,
    ) -> Result<Team, OrgError> {
        let id = uuid::Uuid::new_v4().to_string();
        let plan = org::create_team(name, enterprise, id, self.now())?;
        self.apply(plan)
            .await
            .map_err(conflict_as(OrgError::NameTaken))
    }

    async fn team(&self, id: &str) -> Result<Option<Team>, OrgError> {
        Ok(self.get(Table::Apps, &team_pk(id), "team").await?)
    }

    async fn team_by_name(&self, name: &str) -> Result<Option<Team>, OrgError> {
        match self
            .get::<NamePointer>(Table::Apps, &format!("teamname#{name}"), "teamname")
            .await?
        {
            Some(p) => self.team(&p.id).await,
            None => Ok(None),
        }
    }

    async fn set_team_default_role(&self, team: &Team, role: TeamRole) -> Result<Team, OrgError> {
        let plan = org::set_team_default_role(team, role)?;
        self.apply(plan)
            .await
            .map_err(conflict_as(OrgError::NotFound))
    }

    async fn set_team_role(
        &self,
        team: &Team,
        account: &Account,
        role: TeamRole,
    ) -> Result<(), OrgError> {
        let plan = org::set_team_role(team, account, role)?;
        self.apply(plan)
            .await
            .map_err(conflict_as(OrgError::NotFound))
    }

    async fn remove_team_member(&self, team: &Team, account_id: &str) -> Result<bool, OrgError> {
        let plan = org::remove_team_member(team, account_id);
        Ok(self.try_apply(plan).await?.is_some())
    }

    async fn team_members(&self, team: &Team) -> Result<Vec<TeamMember>, OrgError> {
        let mut members: Vec<TeamMember> = self
            .query(Table::Apps, &team_pk(&team.id), "member#")
            .await?;
        members.sort_by(|a, b| (a.role, &a.email).cmp(&(b.role, &b.email)));
        Ok(members)
    }

    async fn team_role_of(
        &self,
        team_id: &str,
        account_id: &str,
    ) -> Result<Option<TeamRole>, OrgError> {
        Ok(self
            .get::<TeamMember>(Table::Apps, &team_pk(team_id), &member_sk(account_id))
            .await?
            .map(|m| m.role))
    }

    async fn create_enterprise(&self, name: &str) -> Result<Enterprise, OrgError> {
        let id = uuid::Uuid::new_v4().to_string();
        let plan = org::create_enterprise(name, id, self.now())?;
        self.apply(plan)
            .await
            .map_err(conflict_as(OrgError::NameTaken))
    }

    async fn enterprise(&self, id: &str) -> Result<Option<Enterprise>, OrgError> {
        Ok(self
            .get(Table::Apps, &enterprise_pk(id), "enterprise")
            .await?)
    }

    async fn enterprise_by_name(&self, name: &str) -> Result<Option<Enterprise>, OrgError> {
        match self
            .get::<NamePointer>(
                Table::Apps,
                &format!("enterprisename#{name}"),
                "enterprisename",
            )
            .await?
        {
            Some(p) => self.enterprise(&p.id).await,
            None => Ok(None),
        }
    }

    async fn set_permissions(
        &self,
        enterprise: &Enterprise,
        account: &Account,
        permissions: &[Permission],
    ) -> Result<(), OrgError> {
        let plan = org::set_permissions(enterprise, account, permissions)?;
        self.apply(plan)
            .await
            .map_err(conflict_as(OrgError::NotFound))
    }

    async fn enterprise_members(
        &self,
        enterprise: &Enterprise,
    ) -> Result<Vec<EnterpriseMember>, OrgError> {
        let mut members: Vec<EnterpriseMember> = self
            .query(Table::Apps, &enterprise_pk(&enterprise.id), "member#")
            .await?;
        members.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(members)
    }

    async fn permissions_of(
        &self,
        enterprise_id: &str,
        account_id: &str,
    ) -> Result<Option<Vec<Permission>>, OrgError> {
        Ok(self
            .get::<EnterpriseMember>(
                Table::Apps,
                &enterprise_pk(enterprise_id),
                &member_sk(account_id),
            )
            .await?
            .map(|m| m.permissions))
    }
}

/// One member as an organisation's administrators see them: who, their role or
/// permissions, and their SSO status, read from the account now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub email: String,
    pub account_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<TeamRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Permission>>,
    pub sso_status: SsoStatus,
}

impl MemberView {
    /// One line for people: email, role or permissions, status.
    pub fn line(&self) -> String {
        let held = match (&self.role, &self.permissions) {
            (Some(r), _) => r.as_str().to_string(),
            (None, Some(p)) => p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(","),
            (None, None) => String::new(),
        };
        format!("{}  {held}  {}", self.email, self.sso_status.as_str())
    }
}

/// The SSO status of the account `account_id` (an account gone is shown as not under SSO).
async fn status_of(store: &Store, account_id: &str) -> Result<SsoStatus, OrgError> {
    let account = store.account(account_id).await.map_err(account_failure)?;
    Ok(match account {
        Some(a) => SsoStatus::of(
            a.blocked_at.is_some(),
            a.status == AccountStatus::Pending,
            a.sso_idp.is_some(),
        ),
        None => SsoStatus::NotUnderSso,
    })
}

/// The team's members with their SSO status (`identity admin team members`,
/// `GET /teams/{team}/members`).
pub async fn team_view(store: &Store, team: &Team) -> Result<Vec<MemberView>, OrgError> {
    let mut out = Vec::new();
    for m in store.team_members(team).await? {
        out.push(MemberView {
            sso_status: status_of(store, &m.account_id).await?,
            email: m.email,
            account_id: m.account_id,
            role: Some(m.role),
            permissions: None,
        });
    }
    Ok(out)
}

/// The enterprise account's members with their SSO status.
pub async fn enterprise_view(
    store: &Store,
    enterprise: &Enterprise,
) -> Result<Vec<MemberView>, OrgError> {
    let mut out = Vec::new();
    for m in store.enterprise_members(enterprise).await? {
        out.push(MemberView {
            sso_status: status_of(store, &m.account_id).await?,
            email: m.email,
            account_id: m.account_id,
            role: None,
            permissions: Some(m.permissions),
        });
    }
    Ok(out)
}

/// An organisation as its administrators act on it: a team (its admins) or an enterprise
/// account (its members holding `manage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Org {
    Team(Team),
    Enterprise(Enterprise),
}

/// Where an account stands in an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Administrator,
    Member,
    Outsider,
}

/// Why an organisation's block or unblock was refused.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("the account is not one of the organisation's single sign-on people")]
    NotTheirs,
    #[error("the account was not blocked by this organisation")]
    NotTheirBlock,
    #[error(transparent)]
    Org(#[from] OrgError),
}

fn account_failure(e: crate::accounts::AccountError) -> OrgError {
    OrgError::Store(e.into_store_error())
}

impl Org {
    /// How a block names it: `team acme`, `enterprise acme-corp`.
    pub fn label(&self) -> String {
        match self {
            Org::Team(t) => format!("team {}", t.name),
            Org::Enterprise(e) => format!("enterprise {}", e.name),
        }
    }

    /// Where the account stands in it, read now (one read): an administrator (a team's
    /// admin, an enterprise account's member holding `manage`), another member, or neither.
    pub async fn standing(&self, store: &Store, account_id: &str) -> Result<Standing, OrgError> {
        let (member, admin) = match self {
            Org::Team(t) => {
                let role = store.team_role_of(&t.id, account_id).await?;
                (role.is_some(), role == Some(TeamRole::Admin))
            }
            Org::Enterprise(e) => {
                let held = store.permissions_of(&e.id, account_id).await?;
                let admin = held
                    .as_ref()
                    .is_some_and(|p| p.contains(&Permission::Manage));
                (held.is_some(), admin)
            }
        };
        Ok(match (member, admin) {
            (_, true) => Standing::Administrator,
            (true, false) => Standing::Member,
            (false, false) => Standing::Outsider,
        })
    }

    /// Its members with their SSO status.
    pub async fn view(&self, store: &Store) -> Result<Vec<MemberView>, OrgError> {
        match self {
            Org::Team(t) => team_view(store, t).await,
            Org::Enterprise(e) => enterprise_view(store, e).await,
        }
    }

    /// Whether an IdP is connected to it.
    fn connected(&self, idp: &crate::idps::Idp) -> bool {
        match self {
            Org::Team(t) => idp.team.as_deref() == Some(t.name.as_str()),
            Org::Enterprise(e) => idp.enterprise.as_deref() == Some(e.name.as_str()),
        }
    }

    /// Whether `account` belongs to it through SSO (`identity_core::org::may_block`): the
    /// IdP it is under, and the IdP of its email's domain (two reads, no scan).
    async fn may_block(&self, store: &Store, account: &Account) -> Result<bool, OrgError> {
        use crate::idps::Idps;
        let under = match account.sso_idp.as_deref() {
            Some(id) => store.idp(id).await?.is_some_and(|i| self.connected(&i)),
            None => false,
        };
        let domain = account
            .email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        let owned = store
            .idp_for_domain(&domain)
            .await?
            .is_some_and(|i| self.connected(&i));
        Ok(identity_core::org::may_block(
            self.standing(store, &account.id).await? != Standing::Outsider,
            under,
            owned,
        ))
    }

    /// Blocks `account` for the organisation: its sessions end, its grants, tokens and API
    /// keys are revoked, and it signs in nowhere until unblocked.
    pub async fn block(&self, store: &Store, account: &Account) -> Result<Account, BlockError> {
        use crate::accounts::Offboarding;
        if !self.may_block(store, account).await? {
            return Err(BlockError::NotTheirs);
        }
        Ok(store
            .block_account_by(&account.id, Some(&self.label()))
            .await
            .map_err(account_failure)?)
    }

    /// Lifts a block this organisation made.
    pub async fn unblock(&self, store: &Store, account: &Account) -> Result<Account, BlockError> {
        use crate::accounts::Offboarding;
        if !self.may_block(store, account).await? {
            return Err(BlockError::NotTheirs);
        }
        if !identity_core::org::may_unblock(account.blocked_by.as_deref(), &self.label()) {
            return Err(BlockError::NotTheirBlock);
        }
        Ok(store
            .unblock_account(&account.id)
            .await
            .map_err(account_failure)?)
    }
}
