//! Server-side sessions as records and the writes that start and end them. The cookie that
//! refers to one (a random id, sealed) is `identity-shared`'s; here a session is known by
//! its storage key, `session#{sha256(id)}`, in the sessions table, with its absolute expiry
//! as the record's TTL.

use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::plan::Plan;
use crate::store::{Cond, Item, Op, StoreError, Table};

pub use crate::sso::complete::SamlSubject;

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, Debug)]
pub struct Session {
    pub account_id: String,
    pub email: String,
    /// Signed in through SAML SSO (and through which IdP).
    pub sso: bool,
    #[serde(default)]
    pub idp: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The account's `session_epoch` when the session started.
    #[serde(default)]
    pub epoch: u64,
    /// Set when an operator signed in as the account ("log in as", for offboarding): every
    /// page shows it, every request is audited, and nothing that mints credentials or
    /// changes API keys is allowed (`http::impersonation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonation: Option<Impersonation>,
    /// For a session started by a SAML login: whom the IdP named and which of its sessions
    /// it was, for SAML Single Logout both ways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlSubject>,
}

/// Who signed in as the account, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impersonation {
    pub by: String,
    pub reason: String,
    /// Who made the link as the store knew them (`audit::AuditEntry::operator`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operator: String,
}

/// The longest an impersonation session lasts.
pub const IMPERSONATION_LIFETIME_SECS: i64 = 60 * 60;

impl Session {
    /// A plain session of the account from `now`, for `lifetime_secs`: no SSO, no
    /// impersonation, the account's current session epoch.
    pub fn fresh(account: &Account, now: i64, lifetime_secs: i64) -> Session {
        Session {
            account_id: account.id.to_string(),
            email: account.email.clone(),
            sso: false,
            idp: None,
            created_at: now,
            expires_at: now + lifetime_secs,
            epoch: account.session_epoch,
            impersonation: None,
            saml: None,
        }
    }

    /// Is the session still good for the account as it is now (not ended by a password
    /// reset, a move to SSO, an IdP removal or "sign out everywhere" since it started, and
    /// the account not blocked unless this is an operator's impersonation session)?
    pub fn is_current_for(&self, account: &Account) -> bool {
        self.account_id == account.id
            && self.epoch == account.session_epoch
            // A blocked account signs in nowhere; the operator offboarding it may still act
            // as it ("log in as"), marked and audited.
            && (!account.is_blocked() || self.impersonation.is_some())
    }
}

/// The index of SAML sessions: under the IdP and NameID, one record per session of ours
/// (sort key: the session's own key), so an IdP's LogoutRequest finds every session it
/// names. It expires with its session.
pub fn subject_pk(idp: &str, name_id: &str) -> String {
    let hash = crate::digest::sha256_hex(format!("{idp}\n{name_id}").as_bytes());
    format!("saml-subject#{hash}")
}

/// An entry of the SAML sessions' index: the IdP's session it was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectEntry {
    #[serde(default)]
    pub session_index: Option<String>,
}

/// Starts `session` under the storage key `key` (new: a fresh random id), with its entry
/// in the SAML sessions' index when a SAML login started it.
pub fn start(key: &str, session: Session) -> Result<Plan<Session>, StoreError> {
    let item = Item::new(key, "session", &session)?.expiring(session.expires_at);
    let mut ops = vec![Op::Put {
        table: Table::Sessions,
        item,
        cond: Cond::Absent,
    }];
    if let (Some(idp), Some(subject)) = (&session.idp, &session.saml) {
        let entry = SubjectEntry {
            session_index: subject.session_index.clone(),
        };
        ops.push(Op::Put {
            table: Table::Sessions,
            item: Item::new(subject_pk(idp, &subject.name_id), key, &entry)?
                .expiring(session.expires_at),
            cond: Cond::Absent,
        });
    }
    Ok(Plan::write(ops, session))
}

/// Ends the session under `key` (gone already is ended).
pub fn end(key: &str) -> Plan<()> {
    Plan::write(vec![delete(key.into(), "session".into())], ())
}

/// Whether an IdP's LogoutRequest naming `session_indexes` (none: every session of the
/// subject) reaches the session indexed by `entry`.
pub fn named_by(entry: &SubjectEntry, session_indexes: &[String]) -> bool {
    session_indexes.is_empty()
        || entry
            .session_index
            .as_deref()
            .is_some_and(|s| session_indexes.iter().any(|i| i == s))
}

/// Ends the session `key` that the index `subject_pk` lists, and its entry there.
pub fn end_indexed(subject_pk: &str, key: &str) -> Plan<()> {
    Plan::write(
        vec![
            delete(key.into(), "session".into()),
            delete(subject_pk.into(), key.into()),
        ],
        (),
    )
}

fn delete(pk: String, sk: String) -> Op {
    crate::store::record::remove(Table::Sessions, pk, sk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountStatus, Email, new_account};

    fn account() -> Account {
        let email = Email::parse("a@example.com").unwrap();
        new_account("a1", &email, None, AccountStatus::Active, None, 0)
    }

    #[test]
    fn a_session_ends_with_the_accounts_epoch_and_with_a_block_unless_impersonated() {
        let mut account = account();
        let session = Session::fresh(&account, 10, 100);
        assert!(session.is_current_for(&account));
        account.blocked_at = Some(20);
        assert!(!session.is_current_for(&account));
        let impersonated = Session {
            impersonation: Some(Impersonation {
                by: "ops".into(),
                reason: "offboarding".into(),
                operator: String::new(),
            }),
            ..session.clone()
        };
        assert!(impersonated.is_current_for(&account));
        account.blocked_at = None;
        account.end_all_sessions();
        assert!(!session.is_current_for(&account));
    }

    #[test]
    fn a_saml_session_is_indexed_under_its_subject_until_it_expires() {
        let session = Session {
            sso: true,
            idp: Some("okta".into()),
            saml: Some(SamlSubject {
                name_id: "ada".into(),
                format: None,
                name_qualifier: None,
                sp_name_qualifier: None,
                session_index: Some("s1".into()),
            }),
            ..Session::fresh(&account(), 10, 100)
        };
        let plan = start("session#k", session).unwrap();
        assert_eq!(plan.ops.len(), 2);
        match &plan.ops[1] {
            Op::Put { item, .. } => {
                assert_eq!(item.pk, subject_pk("okta", "ada"));
                assert_eq!(item.sk, "session#k");
                assert_eq!(item.expires_at, Some(110));
            }
            other => panic!("{other:?}"),
        }
        let plain = start("session#p", Session::fresh(&account(), 10, 100)).unwrap();
        assert_eq!(plain.ops.len(), 1);
    }

    #[test]
    fn a_logout_request_reaches_the_sessions_it_names_or_all_when_it_names_none() {
        let entry = SubjectEntry {
            session_index: Some("s1".into()),
        };
        assert!(named_by(&entry, &[]));
        assert!(named_by(&entry, &["s0".into(), "s1".into()]));
        assert!(!named_by(&entry, &["s2".into()]));
        let unindexed = SubjectEntry {
            session_index: None,
        };
        assert!(!named_by(&unindexed, &["s1".into()]));
        assert_eq!(end_indexed("saml-subject#x", "session#k").ops.len(), 2);
    }
}
