//! Passwords and their reset through a single-use link, for accounts not under SSO: what a
//! request for a link writes ([`request`]: the same one write whether or not the account
//! exists) and what following it does ([`reset`]).

use serde::{Deserialize, Serialize};

use crate::account::{self, Account};
use crate::digest::Digest;
use crate::grant::{self, Grant};
use crate::outbox::{self, OutboxMessage};
use crate::plan::Plan;
use crate::store::{StoreError, once};

pub const RESET_TTL_SECS: i64 = 3600;
/// At most this many password messages to one address per hour; further requests are
/// answered the same way and send nothing, so strangers cannot fill anyone's outbox.
pub const MAX_RESET_MESSAGES_PER_HOUR: usize = 3;
/// The subjects of password messages (counted against the hourly cap).
pub const RESET_SUBJECTS: &[&str] = &["Reset your password", "Your password"];
/// Shortest password accepted (NIST SP 800-63B asks for at least 8; we ask for more).
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A password of acceptable length (in characters).
pub fn acceptable(password: &str) -> bool {
    (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&password.chars().count())
}

/// The single-use kind of reset links: `password-reset#{sha256(token)}` / `once`.
pub const RESET_KIND: &str = "password-reset";

/// A reset link's record key in [`crate::store::Table::Once`].
pub fn reset_pk(token_key: &str) -> String {
    once::pk(RESET_KIND, token_key)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResetRecord {
    pub account_id: String,
}

/// The fresh values a request may use (made by the caller): the link's token key and its
/// message, the note for an account under SSO, and two random keys for the decoy write.
#[derive(Debug, Clone, Copy)]
pub struct Fresh<'a> {
    pub token_key: &'a str,
    pub reset_message: &'a OutboxMessage,
    pub sso_note: &'a OutboxMessage,
    pub suffix: &'a str,
    pub decoys: [&'a str; 2],
}

/// The rule of a request for a reset link, given the account the email names and how
/// many password messages went to it in the last hour: a link and its message for an
/// account not under SSO, a note for one under SSO; for an unknown email, or past the
/// hourly cap, two records under keys nobody holds (so the answer's timing does not tell
/// whether the account exists). `true` when a message was written.
pub fn request(
    account: Option<&Account>,
    recent: usize,
    fresh: &Fresh<'_>,
    now: i64,
) -> Result<Plan<bool>, StoreError> {
    let Some(account) = account.filter(|_| recent < MAX_RESET_MESSAGES_PER_HOUR) else {
        let ops = fresh
            .decoys
            .iter()
            .map(|key| once::put("decoy", key, &serde_json::json!({}), now + RESET_TTL_SECS))
            .collect::<Result<Vec<_>, StoreError>>()?;
        return Ok(Plan::write(ops, false));
    };
    let ops = if account.sso_idp.is_some() {
        vec![outbox::put(fresh.sso_note, fresh.suffix)?]
    } else {
        let record = ResetRecord {
            account_id: account.id.to_string(),
        };
        vec![
            once::put(RESET_KIND, fresh.token_key, &record, now + RESET_TTL_SECS)?,
            outbox::put(fresh.reset_message, fresh.suffix)?,
        ]
    };
    Ok(Plan::write(ops, true))
}

/// The account is under SSO: it has no password to reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnderSso;

/// The rule of a followed reset link (`None`: its record or account is gone): the new
/// password (`new_hash`) is set, and whoever knew the old one loses what it opened: the
/// account's grants are revoked, its sessions and API keys end, in the write that consumes
/// the link.
pub fn reset(
    token_key: &str,
    account: Option<Account>,
    grants: &[Grant],
    new_hash: &Digest,
    now: i64,
) -> Result<Plan<Result<Option<Account>, UnderSso>>, StoreError> {
    let Some(account) = account else {
        return Ok(Plan::answer(Ok(None)));
    };
    if account.sso_idp.is_some() {
        return Ok(Plan::answer(Err(UnderSso)));
    }
    let mut next = account.clone();
    next.password_hash = Some(new_hash.clone());
    next.end_all_sessions();
    next.end_api_keys();
    let (op, next) = account::update_op(&next)?;
    let mut ops = vec![once::consume(RESET_KIND, token_key)];
    ops.extend(grant::revoke_all(grants, now)?);
    ops.push(op);
    Ok(Plan::write(ops, Ok(Some(next))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountStatus, Email};
    use crate::digest::Sealed;
    use crate::store::Op;

    fn message(subject: &str) -> OutboxMessage {
        OutboxMessage {
            to: "p@example.com".into(),
            subject: subject.into(),
            body_sealed: Sealed::new("x"),
            created_at: 1,
        }
    }

    fn account() -> Account {
        let email = Email::parse("p@example.com").unwrap();
        account::new_account("a1", &email, None, AccountStatus::Active, None, 0)
    }

    fn pks(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Put { item, .. } => item.pk.clone(),
                Op::Delete { pk, .. } | Op::Check { pk, .. } => pk.clone(),
            })
            .collect()
    }

    #[test]
    fn a_request_writes_once_whether_or_not_the_account_exists_and_sends_at_most_three_an_hour() {
        let (reset, note) = (message("Reset your password"), message("Your password"));
        let fresh = Fresh {
            token_key: "t",
            reset_message: &reset,
            sso_note: &note,
            suffix: "s",
            decoys: ["d1", "d2"],
        };
        let a = account();
        let sent = request(Some(&a), 0, &fresh, 5).unwrap();
        assert!(sent.outcome);
        assert_eq!(pks(&sent.ops), ["password-reset#t", "outbox#p@example.com"]);
        for (who, recent) in [(None, 0), (Some(&a), MAX_RESET_MESSAGES_PER_HOUR)] {
            let decoy = request(who, recent, &fresh, 5).unwrap();
            assert!(!decoy.outcome);
            assert_eq!(pks(&decoy.ops), ["decoy#d1", "decoy#d2"]);
        }
        let mut under = account();
        under.sso_idp = Some("acme".into());
        let note_only = request(Some(&under), 0, &fresh, 5).unwrap();
        assert_eq!(pks(&note_only.ops), ["outbox#p@example.com"]);
    }

    #[test]
    fn a_reset_revokes_grants_and_ends_sessions_and_keys_in_the_write_that_consumes_the_link() {
        let g = crate::grant::sample("g", 1);
        let plan = reset("t", Some(account()), &[g], &Digest::new("$argon2id$new"), 5).unwrap();
        let Ok(Some(next)) = &plan.outcome else {
            panic!("{:?}", plan.outcome)
        };
        assert_eq!((next.session_epoch, next.key_epoch), (1, 1));
        assert_eq!(
            pks(&plan.ops),
            ["password-reset#t", "grant#g", "account#a1", "account#a1"]
        );
        let mut under = account();
        under.sso_idp = Some("acme".into());
        let refused = reset("t", Some(under), &[], &Digest::new("h"), 5).unwrap();
        assert_eq!(refused, Plan::answer(Err(UnderSso)));
    }

    #[test]
    fn passwords_are_twelve_to_256_characters() {
        assert!(!acceptable("eleven-char"));
        assert!(acceptable("twelve-chars"));
        assert!(acceptable(&"é".repeat(256)));
        assert!(!acceptable(&"x".repeat(257)));
    }
}
