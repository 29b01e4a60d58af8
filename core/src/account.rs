//! Accounts: one per email, `active` or `pending` (created by a first SSO login and
//! waiting for the welcome link), with an optional password and an optional IdP; and their
//! records in [`Table::Accounts`]: `account#{id}` / `account` and the email's pointer
//! `email#{email}` / `email`.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::ids::AccountId;
use crate::store::{Cond, Item, Op, StoreError, Table};

/// Not an email address we take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid email address")]
pub struct InvalidEmail;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Pending,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Pending => "pending",
        }
    }
}

/// An account. `Debug` leaves out the password hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub status: AccountStatus,
    /// Argon2id PHC string; `None` for accounts without a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<Digest>,
    /// The IdP the account is under, once it is under SSO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_idp: Option<String>,
    /// The generation of the IdP (`Idp::generation`) the account came under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_generation: Option<String>,
    /// The IdP that owned the account's domain when an operator made the account: its first
    /// SSO login through that IdP (that generation of it) links it without asking the owner
    /// by email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_idp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_generation: Option<String>,
    /// The persistent NameID its IdP first named the account by: a later login through that
    /// IdP with another persistent NameID for the same email is refused (an address given
    /// to someone else, or asserted for the wrong person). Forgotten when the account comes
    /// under another IdP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_name_id: Option<String>,
    /// Sessions carry the epoch they started in; bumping it (password reset, move to SSO,
    /// IdP removal) ends every session of the account at once, on both backends.
    #[serde(default)]
    pub session_epoch: u64,
    /// API keys carry the epoch they were made in; bumping it wherever the account's grants
    /// are revoked (password reset, move to SSO, block) ends every one of them at once.
    #[serde(default)]
    pub key_epoch: u64,
    /// When an operator blocked the account: it signs in nowhere, and its sessions,
    /// grants and tokens ended then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_at: Option<i64>,
    /// The organisation that blocked it (`team NAME`, `enterprise NAME`); none: the
    /// operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    pub created_at: i64,
    /// Store version, for optimistic updates; not part of the record body.
    #[serde(skip)]
    pub version: i64,
}

impl Account {
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }

    pub fn is_blocked(&self) -> bool {
        self.blocked_at.is_some()
    }

    /// Is the account under this IdP, as registered now (not an earlier IdP of that id)?
    pub fn is_under(&self, idp: &dyn IdpRef) -> bool {
        self.sso_idp.as_deref() == Some(idp.idp_id())
            && self.sso_generation.as_deref().unwrap_or("") == idp.idp_generation()
    }

    /// Did an operator register the account for this IdP (this generation of it)?
    pub fn is_registered_for(&self, idp: &dyn IdpRef) -> bool {
        self.registered_idp.as_deref() == Some(idp.idp_id())
            && self.registered_generation.as_deref().unwrap_or("") == idp.idp_generation()
    }

    /// Ends every session started before now (they fail `Session::is_current_for`).
    pub fn end_all_sessions(&mut self) {
        self.session_epoch += 1;
    }

    /// Ends every API key made before now (with the grants the caller revokes).
    pub fn end_api_keys(&mut self) {
        self.key_epoch += 1;
    }

    /// Puts the account under `idp` (a NameID bound under another IdP is forgotten).
    pub fn put_under(&mut self, idp: &dyn IdpRef) {
        if !self.is_under(idp) {
            self.sso_name_id = None;
        }
        self.sso_idp = Some(idp.idp_id().to_string());
        self.sso_generation = Some(idp.idp_generation().to_string());
    }

    /// The domain of its (stored, already parsed) email.
    pub fn email_domain(&self) -> &str {
        self.email.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// Takes the account out of SSO (its IdP removed, or its domain claimed by an IdP that
    /// owns it): sessions and API keys end; the caller revokes its grants.
    pub fn release_from_sso(&mut self) {
        self.sso_idp = None;
        self.sso_generation = None;
        self.sso_name_id = None;
        self.end_all_sessions();
        self.end_api_keys();
    }

    /// The operator-facing JSON (no password hash).
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "account_id": self.id,
            "email": self.email,
            "status": self.status.as_str(),
            "has_password": self.has_password(),
            "sso": self.sso_idp.is_some(),
            "idp": self.sso_idp,
            "registered_idp": self.registered_idp,
            "blocked": self.is_blocked(),
            "blocked_by": self.blocked_by,
            "created_at": crate::clock::rfc3339(self.created_at),
        })
    }
}

/// What an account needs to know of an IdP: its id and generation (`crate::idp::Idp`
/// implements it).
pub trait IdpRef: Sync {
    fn idp_id(&self) -> &str;
    fn idp_generation(&self) -> &str;
}

/// An email address, trimmed and lowercased, checked for a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let e = raw.trim().to_lowercase();
        let valid = e.len() <= 254
            && e.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
                    && !domain.contains('@')
            })
            && !e.chars().any(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';')
            });
        if valid {
            Ok(Self(e))
        } else {
            Err(InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

crate::versioned!(Account);

pub fn account_pk(id: &str) -> String {
    format!("account#{id}")
}

pub fn email_pk(email: &Email) -> String {
    format!("email#{}", email.as_str())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailPointer {
    pub account_id: String,
}

/// The writes that create `account` (its record and its email pointer), for callers that
/// create an account inside a larger atomic write.
pub fn create_ops(account: &Account) -> Result<Vec<Op>, StoreError> {
    let email = Email(account.email.clone());
    Ok(vec![
        Op::Put {
            table: Table::Accounts,
            item: Item::new(
                email_pk(&email),
                "email",
                &EmailPointer {
                    account_id: account.id.to_string(),
                },
            )?,
            cond: Cond::Absent,
        },
        Op::Put {
            table: Table::Accounts,
            item: Item::new(account_pk(&account.id), "account", account)?,
            cond: Cond::Absent,
        },
    ])
}

/// The write that saves changes to an account read at `account.version`, and the account
/// as it will be after it.
pub fn update_op(account: &Account) -> Result<(Op, Account), StoreError> {
    let mut next = account.clone();
    next.version = account.version + 1;
    let item = Item::new(account_pk(&account.id), "account", &next)?.with_version(next.version);
    Ok((
        Op::Put {
            table: Table::Accounts,
            item,
            cond: Cond::Version(account.version),
        },
        next,
    ))
}

/// A new account record (not yet written), under the id `id` (random, made by the caller).
pub fn new_account(
    id: &str,
    email: &Email,
    password_hash: Option<Digest>,
    status: AccountStatus,
    sso_idp: Option<String>,
    now: i64,
) -> Account {
    Account {
        id: id.into(),
        email: email.as_str().to_string(),
        status,
        password_hash,
        sso_idp,
        sso_generation: None,
        registered_idp: None,
        registered_generation: None,
        sso_name_id: None,
        session_epoch: 0,
        key_epoch: 0,
        blocked_at: None,
        blocked_by: None,
        created_at: now,
        version: 1,
    }
}

/// How many of the account's grants a block revokes in its own write (two writes each,
/// beside the account's, within one atomic write); any beyond are revoked by the caller's
/// pass after it.
pub const REVOKED_WITH_BLOCK: usize = 48;

/// A change to an account as loaded, with what it revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// "Sign out everywhere": its sessions and API keys end; grants stay.
    SignOutEverywhere,
    /// Blocked (by `by`, `None`: the operator; a first block is kept): it signs in nowhere,
    /// its sessions and API keys end and its grants are revoked in the same write.
    Block { by: Option<&'a str> },
    /// It may sign in again; what was revoked stays revoked.
    Unblock,
    /// Taken out of SSO under the IdP `from` (removed, or its domain now another IdP's):
    /// what that IdP vouched for ends as a block's would (sessions, API keys, grants), and
    /// its owner comes back by the new IdP's rules. Nothing when it is not under `from`.
    Release { from: &'a str },
}

/// The rule of a change to an account (`None` when there is none, or, for a release, when
/// it is not under the IdP) with its live grants.
pub fn change(
    account: Option<Account>,
    grants: &[crate::grant::Grant],
    change: Change<'_>,
    now: i64,
) -> Result<crate::plan::Plan<Option<Account>>, StoreError> {
    let Some(account) = account else {
        return Ok(crate::plan::Plan::answer(None));
    };
    let mut next = account.clone();
    let mut ops = Vec::new();
    match change {
        Change::SignOutEverywhere => {
            next.end_all_sessions();
            next.end_api_keys();
        }
        Change::Block { by } => {
            if next.blocked_at.is_none() {
                next.blocked_at = Some(now);
                next.blocked_by = by.map(str::to_string);
            }
            next.end_all_sessions();
            next.end_api_keys();
            let first = &grants[..grants.len().min(REVOKED_WITH_BLOCK)];
            ops.extend(crate::grant::revoke_all(first, now)?);
        }
        Change::Unblock => {
            next.blocked_at = None;
            next.blocked_by = None;
        }
        Change::Release { from } => {
            if account.sso_idp.as_deref() != Some(from) {
                return Ok(crate::plan::Plan::answer(None));
            }
            next.release_from_sso();
            let first = &grants[..grants.len().min(REVOKED_WITH_BLOCK)];
            ops.extend(crate::grant::revoke_all(first, now)?);
        }
    }
    let (op, saved) = update_op(&next)?;
    ops.push(op);
    Ok(crate::plan::Plan::write(ops, Some(saved)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        assert_eq!(
            Email::parse("ada@example.com").unwrap().domain(),
            "example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
            "ada@.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn sample() -> Account {
        new_account(
            "a1",
            &Email::parse("a@example.com").unwrap(),
            None,
            AccountStatus::Active,
            None,
            0,
        )
    }

    #[test]
    fn a_block_ends_sessions_and_keys_and_revokes_grants_in_its_write_and_keeps_the_first_blocker()
    {
        let grant = crate::grant::sample("g", 1);
        let plan = change(
            Some(sample()),
            std::slice::from_ref(&grant),
            Change::Block { by: Some("team t") },
            5,
        )
        .unwrap();
        let blocked = plan.outcome.unwrap();
        assert_eq!(
            (blocked.blocked_at, blocked.session_epoch, blocked.key_epoch),
            (Some(5), 1, 1)
        );
        assert_eq!(
            plan.ops.len(),
            3,
            "the grant (record, pointer) and the account"
        );
        let again = change(Some(blocked), &[], Change::Block { by: None }, 9).unwrap();
        let again = again.outcome.unwrap();
        assert_eq!(
            (again.blocked_at, again.blocked_by.as_deref()),
            (Some(5), Some("team t"))
        );
    }

    #[test]
    fn unblocking_lets_it_sign_in_and_signing_out_everywhere_keeps_grants() {
        let mut blocked = sample();
        blocked.blocked_at = Some(1);
        let plan = change(Some(blocked), &[], Change::Unblock, 5).unwrap();
        assert!(!plan.outcome.unwrap().is_blocked());
        let plan = change(Some(sample()), &[], Change::SignOutEverywhere, 5).unwrap();
        assert_eq!(plan.ops.len(), 1);
        assert_eq!(plan.outcome.unwrap().session_epoch, 1);
        assert_eq!(change(None, &[], Change::Unblock, 5).unwrap().outcome, None);
    }

    #[test]
    fn account_debug_hides_password_hash() {
        let a = Account {
            id: "1".into(),
            email: "a@example.com".into(),
            status: AccountStatus::Active,
            password_hash: Some(Digest::new("$argon2id$secret")),
            sso_idp: None,
            sso_generation: None,
            registered_idp: None,
            registered_generation: None,
            sso_name_id: None,
            session_epoch: 0,
            key_epoch: 0,
            blocked_at: None,
            blocked_by: None,
            created_at: 0,
            version: 1,
        };
        assert!(!format!("{a:?}").contains("argon2id"));
        assert!(!a.public_json().to_string().contains("argon2id"));
    }

    #[test]
    fn a_release_ends_what_the_idp_vouched_for_and_only_under_that_idp() {
        let mut under = sample();
        under.sso_idp = Some("old".into());
        under.sso_generation = Some("g1".into());
        let grant = crate::grant::sample("g", 1);
        let other = change(
            Some(under.clone()),
            std::slice::from_ref(&grant),
            Change::Release { from: "new" },
            5,
        )
        .unwrap();
        assert_eq!((other.outcome, other.ops.len()), (None, 0));
        let plan = change(
            Some(under),
            std::slice::from_ref(&grant),
            Change::Release { from: "old" },
            5,
        )
        .unwrap();
        let released = plan.outcome.unwrap();
        assert_eq!(
            (
                released.sso_idp,
                released.sso_generation,
                released.session_epoch,
                released.key_epoch
            ),
            (None, None, 1, 1)
        );
        assert_eq!(
            plan.ops.len(),
            3,
            "the grant (record, pointer) and the account"
        );
    }
}
