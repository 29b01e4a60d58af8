//! Apps and their people. An app has one owner and members with roles, and may belong to a
//! team, whose admins and members reach it too (`identity_core::org`); add-ons belong to
//! the app, so who may use them is read from here at request time.

use async_trait::async_trait;
use identity_core::org;

use crate::accounts::Account;
use crate::orgs::{OrgError, Orgs, Team};
use crate::store::{Store, StoreError, Table, conflict_as};

fn org_error(e: OrgError) -> AppError {
    match e {
        OrgError::Store(s) => AppError::Store(s),
        other => AppError::Store(StoreError::Corrupt(other.to_string())),
    }
}

pub use identity_core::app::{App, AppError, Member, valid_app_name};
pub use identity_core::sso::Role;

use identity_core::app::{
    self as rules, Membership, NamePointer, account_apps_pk, app_pk, member_sk, name_pk,
};

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

#[async_trait]
impl Apps for Store {
    async fn create_team_app(
        &self,
        name: &str,
        owner: &Account,
        team: Option<&Team>,
    ) -> Result<App, AppError> {
        let id = uuid::Uuid::new_v4().to_string();
        let team_id = team.map(|t| t.id.as_str());
        let plan = rules::create(name, owner, team_id, id, self.now())?;
        self.apply(plan)
            .await
            .map_err(conflict_as(AppError::NameTaken))
    }

    async fn app(&self, id: &str) -> Result<Option<App>, AppError> {
        Ok(self.get(Table::Apps, &app_pk(id), "app").await?)
    }

    async fn app_by_name(&self, name: &str) -> Result<Option<App>, AppError> {
        match self
            .get::<NamePointer>(Table::Apps, &name_pk(name), "appname")
            .await?
        {
            Some(p) => self.app(&p.app_id).await,
            None => Ok(None),
        }
    }

    async fn set_role(&self, app: &App, account: &Account, role: Role) -> Result<(), AppError> {
        let previous_owner = if rules::transfers(app, account, role) {
            let owner = member_sk(&app.owner_account_id);
            self.get::<Member>(Table::Apps, &app_pk(&app.id), &owner)
                .await?
        } else {
            None
        };
        let plan = rules::set_role(app, account, role, previous_owner)?;
        self.apply(plan)
            .await
            .map_err(conflict_as(AppError::NotFound))
    }

    async fn remove_member(&self, app: &App, account_id: &str) -> Result<bool, AppError> {
        let plan = rules::remove_member(app, account_id)?;
        Ok(self.try_apply(plan).await?.is_some())
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
    fn roles_round_trip() {
        for r in [Role::Owner, Role::Admin, Role::Member, Role::Collaborator] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("viewer"), None);
    }
}
