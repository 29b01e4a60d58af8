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
use identity_core::api_key::{self, NewKey, index_pk, index_sk, key_pk};
pub use identity_core::api_key::{ApiKey, ApiKeyError};
use identity_core::digest::Digest;

use crate::accounts::{Account, Accounts};
use crate::crypto;
use crate::oauth::Grants;
use crate::secret::SecretString;
use crate::store::{Store, StoreError, Table};

/// Whether a bearer token is one of our API keys (by its prefix) rather than a JWT.
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(api_key::PREFIX)
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
        let token = SecretString::new(format!(
            "{}{}",
            api_key::PREFIX,
            crypto::random_token().expose_secret()
        ));
        let new = NewKey {
            id: hex::encode(crypto::random_bytes(8)),
            token_sha256: Digest::new(crypto::sha256_hex(token.expose_secret().as_bytes())),
            description,
            expires_in,
        };
        let plan = api_key::create(account, gid, new, self.now())?;
        Ok((self.apply(plan).await?, token))
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
        self.apply(api_key::revoke(&key)).await?;
        Ok(true)
    }
}
