//! Refresh tokens: opaque (256 random bits), stored as their SHA-256, rotated on every use.
//! Using one marks it spent and issues its successor in one atomic write conditioned on
//! the record's version, so of any number of concurrent uses exactly one rotates.
//!
//! A spent token presented again is a reuse: the whole grant is revoked, unless the token
//! was spent less than the grace period ago *and its successor has not been used yet*.
//! Within that window the second use is taken to be a retry of the same request (a client
//! that timed out and tried again, two tabs racing): it is refused with `invalid_grant`
//! and nothing is revoked. Once the successor has been used, a reuse of the old token is a
//! reuse whatever the time (a thief who rotated first cannot hide behind the window). It
//! never gets a second successor, so there is never more than one live token family.

use async_trait::async_trait;

use super::grant::{Grant, Grants};
use super::scope::Scopes;
use crate::crypto;
use crate::secret::SecretString;
use crate::store::{Op, Store, StoreError, Table};

use identity_core::refresh::{self, Rotated};
pub use identity_core::refresh::{Judgement, RefreshRecord, judge};

/// A successful rotation: the new token (shown once) and its record; the grant it
/// belongs to.
#[derive(Debug)]
pub struct Rotation {
    pub token: SecretString,
    pub record: RefreshRecord,
    pub grant: Grant,
}

/// What using a refresh token did.
#[derive(Debug)]
pub enum RefreshOutcome {
    Rotated(Box<Rotation>),
    /// Unknown, expired, issued to another client, or its grant is revoked.
    Invalid,
    /// Asked for a scope the token does not carry; nothing changed.
    ScopeTooWide,
    /// A retry within the grace period of the use that spent it; nothing changed.
    RetryWithinGrace,
    /// A spent token used again: its grant was revoked.
    Reused {
        gid: identity_core::ids::GrantId,
    },
}

/// A new refresh token for a grant and the write that stores it; `auth_time` is when the
/// person approved the login it comes from (`None`: no person did).
pub fn new_refresh_token(
    grant: &Grant,
    scope: &Scopes,
    now: i64,
    auth_time: Option<i64>,
) -> Result<(SecretString, RefreshRecord, Op), StoreError> {
    let token = crypto::random_token();
    let hash = crypto::sha256_hex(token.expose_secret().as_bytes());
    let (record, op) = refresh::issue(grant, scope, now, auth_time, &hash)?;
    Ok((token, record, op))
}

#[async_trait]
pub trait RefreshTokens {
    /// Uses a refresh token presented by `client_id`, asking for `requested` scopes (or
    /// the token's own when `None`).
    async fn rotate_refresh(
        &self,
        token: &str,
        client_id: &str,
        requested: Option<&Scopes>,
        grace_secs: i64,
    ) -> Result<RefreshOutcome, StoreError>;
    /// The record of a live, unspent refresh token whose grant is live.
    async fn live_refresh(&self, token: &str) -> Result<Option<RefreshRecord>, StoreError>;
    /// The record of a refresh token that has not expired, spent or not.
    async fn refresh_record(&self, token: &str) -> Result<Option<RefreshRecord>, StoreError>;
}

async fn read_record(store: &Store, hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
    store
        .get_versioned(Table::OAuth, &refresh::record_pk(hash), "refresh")
        .await
}

fn plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= 256
}

/// A token's record, its successor's when it was spent, and its grant.
async fn load(store: &Store, hash: &str) -> Result<refresh::Loaded, StoreError> {
    let Some(record) = read_record(store, hash).await? else {
        return Ok(refresh::Loaded::default());
    };
    let successor = match (&record.spent_at, &record.successor) {
        (Some(_), Some(next)) => read_record(store, next).await?,
        _ => None,
    };
    let grant = store.grant(&record.gid).await?;
    Ok(refresh::Loaded {
        record: Some(record),
        successor,
        grant,
    })
}

#[async_trait]
impl RefreshTokens for Store {
    async fn rotate_refresh(
        &self,
        token: &str,
        client_id: &str,
        requested: Option<&Scopes>,
        grace_secs: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        if !plausible(token) {
            return Ok(RefreshOutcome::Invalid);
        }
        let hash = crypto::sha256_hex(token.as_bytes());
        let fresh = crypto::random_token();
        let fresh_hash = crypto::sha256_hex(fresh.expose_secret().as_bytes());
        let presented = refresh::Presented {
            token_hash: &hash,
            client_id,
            requested,
        };
        let outcome = self
            .run(
                |_| load(self, &hash),
                |loaded, now| refresh::rotate(presented, loaded, grace_secs, &fresh_hash, now),
            )
            .await?;
        Ok(match outcome {
            Rotated::Rotated(next) => RefreshOutcome::Rotated(Box::new(Rotation {
                token: fresh,
                record: next.record,
                grant: next.grant,
            })),
            Rotated::Invalid => RefreshOutcome::Invalid,
            Rotated::ScopeTooWide => RefreshOutcome::ScopeTooWide,
            Rotated::RetryWithinGrace => {
                tracing::warn!(
                    client_id,
                    "refresh token presented again within the grace period: refused, nothing revoked"
                );
                RefreshOutcome::RetryWithinGrace
            }
            Rotated::Reused { gid } => RefreshOutcome::Reused { gid },
        })
    }

    async fn live_refresh(&self, token: &str) -> Result<Option<RefreshRecord>, StoreError> {
        let Some(record) = self.refresh_record(token).await? else {
            return Ok(None);
        };
        if record.spent_at.is_some() {
            return Ok(None);
        }
        Ok(match self.grant(&record.gid).await? {
            Some(g) if g.is_live() => Some(record),
            _ => None,
        })
    }

    async fn refresh_record(&self, token: &str) -> Result<Option<RefreshRecord>, StoreError> {
        if !plausible(token) {
            return Ok(None);
        }
        read_record(self, &crypto::sha256_hex(token.as_bytes())).await
    }
}
