//! Long-lived API keys (Heroku's `authorizations:create`): tokens for CI and scripts that act
//! as their account (`identity_core::api_key::SCOPE`) until revoked, until they expire,
//! until the grant of the login that made them ends (`identity logout`, a revocation, the
//! account's IdP removed), or until the account's keys end (a move to SSO, a reset, a block,
//! "sign out everywhere": they bump its key epoch; see `identity_core::api_key`).
//!
//! Only the SHA-256 of a key is kept (the key is `idk_` + 256 random bits, so a fast hash is
//! enough). Two records per key in the OAuth table, written and deleted together: the key by
//! its hash (what a request presents) and the account's index (what listings and revocation
//! by id read). Both expire with the key.

use async_trait::async_trait;
/// How recent the login behind a token must be for it to make a key.
pub use identity_core::api_key::MINT_WINDOW_SECS;
use identity_core::api_key::{self, Holder};
use identity_core::digest::Digest;
use serde::{Deserialize, Serialize};

use crate::accounts::{Account, AccountStatus, Accounts};
use crate::crypto;
use crate::oauth::Grants;
use crate::secret::SecretString;
use crate::store::{Cond, Item, Op, Store, StoreError, Table};

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
    token_sha256: Digest,
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
        api_key::usable(self.epoch, account.map(holder))
    }
}

fn holder(a: &Account) -> Holder {
    Holder {
        key_epoch: a.key_epoch,
        blocked: a.blocked_at.is_some(),
        active: a.status == AccountStatus::Active,
    }
}

/// Whether a bearer token is one of our API keys (by its prefix) rather than a JWT.
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(api_key::PREFIX)
}

fn key_pk(token_sha256: &str) -> String {
    format!("apikey#{token_sha256}")
}

fn index_pk(account_id: &str) -> String {
    format!("apikeys#{account_id}")
}

fn index_sk(id: &str) -> String {
    format!("key#{id}")
}

/// Whether the grant that made the key is live and its account's: a key ends with the
/// login that made it (a key recorded without one acts no more).
async fn grant_lives(store: &Store, key: &ApiKey) -> Result<bool, StoreError> {
    let Some(gid) = key.gid.as_deref() else {
        return Ok(false);
    };
    Ok(store
        .grant(gid)
        .await?
        .is_some_and(|g| g.is_live() && g.account_id == key.account_id))
}

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait ApiKeys {
    /// Makes a key for `account` under the grant `gid` of the login that asks for it; the
    /// key itself is returned once and never stored.
    async fn create_api_key(
        &self,
        account: &Account,
        gid: &str,
        description: Option<&str>,
        expires_in: Option<i64>,
    ) -> Result<(ApiKey, SecretString), ApiKeyError>;
    /// The key a bearer token names and the account it acts for, when it still acts.
    async fn api_key_in_use(&self, token: &str) -> Result<Option<(ApiKey, Account)>, StoreError>;
    /// The account's keys that still act, oldest first.
    async fn api_keys_of(&self, account: &Account) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes the account's key `id`; false when it has none by that id.
    async fn revoke_api_key(&self, account_id: &str, id: &str) -> Result<bool, StoreError>;
}

#[async_trait]
impl ApiKeys for Store {
    async fn create_api_key(
        &self,
        account: &Account,
        gid: &str,
        description: Option<&str>,
        expires_in: Option<i64>,
    ) -> Result<(ApiKey, SecretString), ApiKeyError> {
        let description = api_key::description(description).map_err(ApiKeyError::Invalid)?;
        let lifetime = api_key::lifetime(expires_in).map_err(ApiKeyError::Invalid)?;
        let token = SecretString::new(format!(
            "{}{}",
            api_key::PREFIX,
            crypto::random_token().expose_secret()
        ));
        let now = self.now();
        let hash = crypto::sha256_hex(token.expose_secret().as_bytes());
        let key = ApiKey {
            id: hex::encode(crypto::random_bytes(8)),
            account_id: account.id.to_string(),
            description,
            created_at: now,
            expires_at: lifetime.map(|s| now + s),
            epoch: account.key_epoch,
            gid: Some(gid.to_string()),
            token_sha256: Digest::new(hash.clone()),
        };
        let item = |pk: String, sk: String| -> Result<Item, StoreError> {
            let item = Item::new(pk, sk, &key)?;
            Ok(match key.expires_at {
                Some(at) => item.expiring(at),
                None => item,
            })
        };
        self.write(vec![
            Op::Put {
                table: Table::OAuth,
                item: item(key_pk(&hash), "key".into())?,
                cond: Cond::Absent,
            },
            Op::Put {
                table: Table::OAuth,
                item: item(index_pk(&key.account_id), index_sk(&key.id))?,
                cond: Cond::Absent,
            },
        ])
        .await?;
        Ok((key, token))
    }

    async fn api_key_in_use(&self, token: &str) -> Result<Option<(ApiKey, Account)>, StoreError> {
        if !is_api_key(token) {
            return Ok(None);
        }
        let hash = crypto::sha256_hex(token.as_bytes());
        let Some(key) = self
            .get::<ApiKey>(Table::OAuth, &key_pk(&hash), "key")
            .await?
        else {
            return Ok(None);
        };
        // The lookup was by hash; the stored hash is compared again in constant time so
        // that nothing but an exact key passes, whatever the backend's key comparison.
        if !identity_core::digest::same(&key.token_sha256, &hash) {
            return Ok(None);
        }
        let account = self
            .account(&key.account_id)
            .await
            .map_err(crate::accounts::AccountError::into_store_error)?;
        Ok(match account {
            Some(a) if key.usable_for(Some(&a)) && grant_lives(self, &key).await? => Some((key, a)),
            _ => None,
        })
    }

    async fn api_keys_of(&self, account: &Account) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys: Vec<ApiKey> = self
            .query(Table::OAuth, &index_pk(&account.id), "key#")
            .await?;
        keys.retain(|k| k.usable_for(Some(account)));
        // The keys of an account mostly come from one login: each grant is read once.
        let mut lives: std::collections::HashMap<Option<String>, bool> = Default::default();
        let mut live = Vec::with_capacity(keys.len());
        for key in keys {
            let known = lives.get(&key.gid).copied();
            let alive = match known {
                Some(alive) => alive,
                None => {
                    let alive = grant_lives(self, &key).await?;
                    lives.insert(key.gid.clone(), alive);
                    alive
                }
            };
            if alive {
                live.push(key);
            }
        }
        let mut keys = live;
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    async fn revoke_api_key(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let Some(key) = self
            .get::<ApiKey>(Table::OAuth, &index_pk(account_id), &index_sk(id))
            .await?
        else {
            return Ok(false);
        };
        self.write(vec![
            Op::Delete {
                table: Table::OAuth,
                pk: key_pk(&key.token_sha256),
                sk: "key".into(),
                cond: Cond::Always,
            },
            Op::Delete {
                table: Table::OAuth,
                pk: index_pk(account_id),
                sk: index_sk(id),
                cond: Cond::Always,
            },
        ])
        .await?;
        Ok(true)
    }
}
