//! Long-lived API keys (`identity authorizations create`): when a stored key still speaks
//! for its account.
//!
//! A key records the account's key epoch when it was made. Everything that revokes the
//! account's grants bumps that epoch too (a move to SSO, a password reset, a block), so the
//! same change ends every key made before it, with no write per key: the seeds' "long-lived
//! tokens get invalidated after upgrading your account to use SSO", and the account's other
//! revocations with it, and "sign out everywhere".
//!
//! A key also records the grant of the login that made it and ends with that grant. Only
//! the first-party CLI may make keys, from a login a person approved minutes ago
//! ([`may_mint`]): a token obtained by phishing a consent, a CI token or a refreshed token
//! makes none.

use serde::{Deserialize, Serialize};

use crate::account::{Account, AccountStatus};
use crate::digest::Digest;
use crate::plan::Plan;
use crate::store::{Cond, Item, Op, StoreError, Table};

/// The scopes an API key carries: it acts as its account, as a Heroku API key does.
pub const SCOPE: &str = "identity global";

/// Prefix of every API key, so a leaked one is recognisable (secret scanners) and the bearer
/// reader knows which kind of token it holds without trying to parse a JWT.
pub const PREFIX: &str = "idk_";

/// Longest lifetime a key may ask for: one year. Without `--expires-in` a key lasts until it
/// is revoked (or the account's epoch moves).
pub const MAX_LIFETIME_SECS: i64 = 365 * 24 * 60 * 60;

/// Longest description kept.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// How recent the person's approval behind the token must be for it to make a key.
pub const MINT_WINDOW_SECS: i64 = 5 * 60;

/// What [`may_mint`] needs of the bearer asking for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minter<'a> {
    /// The bearer is itself an API key.
    pub is_api_key: bool,
    /// The client the access token was issued to.
    pub client_id: Option<&'a str>,
    /// The grant the token belongs to.
    pub gid: Option<&'a str>,
    /// When the person approved the token (`auth_time`).
    pub auth_time: Option<i64>,
}

/// Whether the bearer may make an API key at `now`: an access token of `first_party` (the
/// CLI's own client), on a grant, approved by its person within [`MINT_WINDOW_SECS`]. The
/// refusal says what to do.
pub fn may_mint(minter: Minter<'_>, first_party: &str, now: i64) -> Result<(), &'static str> {
    if minter.is_api_key {
        return Err(
            "API keys are made with a signed-in token (identity login), not with another API key",
        );
    }
    if minter.client_id != Some(first_party) || minter.gid.is_none() {
        return Err("API keys are made only by the identity CLI from a login (identity login)");
    }
    match minter.auth_time {
        Some(t) if now - t <= MINT_WINDOW_SECS && t <= now + 60 => Ok(()),
        _ => Err(
            "API keys are made only within 5 minutes of a login: run identity login, then try again",
        ),
    }
}

/// What the decision needs of the key's account, as loaded now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub key_epoch: u64,
    pub blocked: bool,
    pub active: bool,
}

/// Whether a key made in `key_epoch` still acts for its account: the account exists, is
/// active and not blocked, and has not had its grants revoked since. (Expiry is the store's:
/// an expired key is absent.)
pub fn usable(key_epoch: u64, holder: Option<Holder>) -> bool {
    holder.is_some_and(|h| h.active && !h.blocked && h.key_epoch == key_epoch)
}

/// Checks a requested lifetime: `None` is "until revoked"; otherwise 60 s to a year.
pub fn lifetime(requested: Option<i64>) -> Result<Option<i64>, &'static str> {
    match requested {
        None => Ok(None),
        Some(s) if (60..=MAX_LIFETIME_SECS).contains(&s) => Ok(Some(s)),
        Some(_) => Err("expires_in must be between 60 seconds and one year (31536000)"),
    }
}

/// A description as kept: trimmed, control characters refused, at most 200 characters.
pub fn description(requested: Option<&str>) -> Result<String, &'static str> {
    let d = requested.unwrap_or("").trim();
    if d.chars().any(char::is_control) {
        return Err("the description must not contain control characters");
    }
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err("the description is longer than 200 characters");
    }
    Ok(d.to_string())
}

// The records, in the OAuth table, written and deleted together and expiring with the key:
// the key by its hash (`apikey#{sha256}` / `key`, what a request presents) and the
// account's index (`apikeys#{account}` / `key#{id}`, what listings and revocation read).

/// A stored key: what it is for and whose it is; its hash prints `[redacted]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Public id, for listings and revocation.
    pub id: String,
    pub account_id: String,
    pub description: String,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The account's key epoch when the key was made.
    pub epoch: u64,
    /// The grant of the login that made the key: the key ends with it. (Keys made before
    /// keys recorded it have none, and act no more.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    pub token_sha256: Digest,
}

impl ApiKey {
    /// The JSON listings show (no hash, no token).
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "description": self.description,
            "created_at": crate::clock::rfc3339(self.created_at),
            "expires_at": self.expires_at.map(crate::clock::rfc3339),
        })
    }

    /// Whether it still acts for `account` (loaded now).
    pub fn usable_for(&self, account: Option<&Account>) -> bool {
        usable(
            self.epoch,
            account.map(|a| Holder {
                key_epoch: a.key_epoch,
                blocked: a.blocked_at.is_some(),
                active: a.status == AccountStatus::Active,
            }),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn key_pk(token_sha256: &str) -> String {
    format!("apikey#{token_sha256}")
}
pub fn index_pk(account_id: &str) -> String {
    format!("apikeys#{account_id}")
}
pub fn index_sk(id: &str) -> String {
    format!("key#{id}")
}

/// What a new key is, apart from the account and the login's grant: fresh values from the
/// caller (its public id and the hash of the token handed out once) and what was asked.
#[derive(Debug)]
pub struct NewKey<'a> {
    pub id: String,
    pub token_sha256: Digest,
    pub description: Option<&'a str>,
    pub expires_in: Option<i64>,
}

/// A new key of `account`, made under the login's grant `gid` in the account's current key
/// epoch: both records, new, expiring with it. Refused: a description or lifetime out of
/// bounds.
pub fn create(
    account: &Account,
    gid: &str,
    new: NewKey<'_>,
    now: i64,
) -> Result<Plan<ApiKey>, ApiKeyError> {
    let description = description(new.description).map_err(ApiKeyError::Invalid)?;
    let lifetime = lifetime(new.expires_in).map_err(ApiKeyError::Invalid)?;
    let key = ApiKey {
        id: new.id,
        account_id: account.id.to_string(),
        description,
        created_at: now,
        expires_at: lifetime.map(|s| now + s),
        epoch: account.key_epoch,
        gid: Some(gid.to_string()),
        token_sha256: new.token_sha256,
    };
    let put = |pk: String, sk: String| -> Result<Op, StoreError> {
        let item = Item::new(pk, sk, &key)?;
        let item = match key.expires_at {
            Some(at) => item.expiring(at),
            None => item,
        };
        Ok(Op::Put {
            table: Table::OAuth,
            item,
            cond: Cond::Absent,
        })
    };
    let ops = vec![
        put(key_pk(&key.token_sha256), "key".into())?,
        put(index_pk(&key.account_id), index_sk(&key.id))?,
    ];
    Ok(Plan::write(ops, key))
}

/// The key (as listed) goes, both records.
pub fn revoke(key: &ApiKey) -> Plan<()> {
    let delete = |pk, sk| crate::store::record::remove(Table::OAuth, pk, sk);
    Plan::write(
        vec![
            delete(key_pk(&key.token_sha256), "key".into()),
            delete(index_pk(&key.account_id), index_sk(&key.id)),
        ],
        (),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: Holder = Holder {
        key_epoch: 3,
        blocked: false,
        active: true,
    };

    #[test]
    fn a_key_acts_only_while_its_account_keeps_the_epoch_it_was_made_in() {
        assert!(usable(3, Some(LIVE)));
        // Moved to SSO, reset its password, blocked: the epoch moved on.
        assert!(!usable(2, Some(LIVE)));
        assert!(!usable(3, None));
        assert!(!usable(
            3,
            Some(Holder {
                blocked: true,
                ..LIVE
            })
        ));
        assert!(!usable(
            3,
            Some(Holder {
                active: false,
                ..LIVE
            })
        ));
    }

    #[test]
    fn only_the_first_party_client_makes_keys_within_minutes_of_an_approval() {
        let fresh = Minter {
            is_api_key: false,
            client_id: Some("identity-cli"),
            gid: Some("g1"),
            auth_time: Some(1_000),
        };
        assert_eq!(
            may_mint(fresh, "identity-cli", 1_000 + MINT_WINDOW_SECS),
            Ok(())
        );
        for refused in [
            Minter {
                auth_time: Some(999),
                ..fresh
            },
            // Refreshed, client credentials, JWT bearer grant: no person approved it.
            Minter {
                auth_time: None,
                ..fresh
            },
            Minter {
                client_id: Some("third-party"),
                ..fresh
            },
            Minter { gid: None, ..fresh },
            Minter {
                is_api_key: true,
                ..fresh
            },
        ] {
            assert!(
                may_mint(refused, "identity-cli", 1_000 + MINT_WINDOW_SECS).is_err(),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn lifetimes_and_descriptions_are_bounded() {
        assert_eq!(lifetime(None), Ok(None));
        assert_eq!(lifetime(Some(3600)), Ok(Some(3600)));
        assert!(lifetime(Some(59)).is_err());
        assert!(lifetime(Some(MAX_LIFETIME_SECS + 1)).is_err());
        assert_eq!(description(Some("  CI deploys ")), Ok("CI deploys".into()));
        assert_eq!(description(None), Ok(String::new()));
        assert!(description(Some("a\nb")).is_err());
        assert!(description(Some(&"x".repeat(201))).is_err());
    }

    #[test]
    fn a_key_carries_the_accounts_key_epoch_and_the_logins_grant_and_expires_when_asked() {
        let email = crate::account::Email::parse("a@example.com").unwrap();
        let mut account =
            crate::account::new_account("a1", &email, None, AccountStatus::Active, None, 0);
        account.key_epoch = 3;
        let new = |expires_in| NewKey {
            id: "k1".into(),
            token_sha256: Digest::new("h"),
            description: Some(" ci "),
            expires_in,
        };
        let plan = create(&account, "g1", new(Some(3600)), 100).unwrap();
        let key = &plan.outcome;
        assert_eq!((key.epoch, key.gid.as_deref()), (3, Some("g1")));
        assert_eq!(
            (key.description.as_str(), key.expires_at),
            ("ci", Some(3700))
        );
        assert!(plan.ops.iter().all(|op| matches!(
            op,
            Op::Put { item, cond: Cond::Absent, .. } if item.expires_at == Some(3700)
        )));
        assert!(key.usable_for(Some(&account)));
        account.end_api_keys();
        assert!(!key.usable_for(Some(&account)));
        assert!(matches!(
            create(&account, "g1", new(Some(1)), 100),
            Err(ApiKeyError::Invalid(_))
        ));
        assert_eq!(revoke(key).ops.len(), 2);
    }
}
