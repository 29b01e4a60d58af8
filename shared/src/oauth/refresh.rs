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

use super::REFRESH_TOKEN_TTL_SECS;
use super::grant::{Grant, Grants};
use super::scope::Scopes;
use crate::crypto;
use crate::secret::SecretString;
use crate::store::{Cond, Item, Op, Store, StoreError, Table};

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

fn refresh_pk(hash: &str) -> String {
    format!("refresh#{hash}")
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
    let record = RefreshRecord {
        gid: grant.gid.clone(),
        client_id: grant.client_id.clone(),
        account_id: grant.account_id.clone(),
        scope: scope.to_string(),
        issued_at: now,
        expires_at: now + REFRESH_TOKEN_TTL_SECS,
        auth_time,
        spent_at: None,
        successor: None,
        version: 1,
    };
    let op = Op::Put {
        table: Table::OAuth,
        item: Item::new(
            refresh_pk(&crypto::sha256_hex(token.expose_secret().as_bytes())),
            "refresh",
            &record,
        )?
        .expiring(record.expires_at),
        cond: Cond::Absent,
    };
    Ok((token, record, op))
}

/// Concurrent rotations of one token lose to the winner with a conflict and then see it
/// spent; a few more tries cover DynamoDB's transaction conflicts.
const RETRIES: usize = 8;

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
        .get_versioned(Table::OAuth, &refresh_pk(hash), "refresh")
        .await
}

fn plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= 256
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
        for _ in 0..RETRIES {
            let now = self.now();
            let Some(record) = read_record(self, &hash).await? else {
                return Ok(RefreshOutcome::Invalid);
            };
            // Only a spent token needs its successor looked at.
            let successor_used = match (&record.spent_at, &record.successor) {
                (None, _) => false,
                (Some(_), Some(next)) => read_record(self, next)
                    .await?
                    .is_none_or(|s| s.spent_at.is_some()),
                (Some(_), None) => true,
            };
            match judge(&record, client_id, now, grace_secs, successor_used) {
                Judgement::OtherClient => return Ok(RefreshOutcome::Invalid),
                Judgement::WithinGrace => {
                    tracing::warn!(gid = %record.gid, client_id, "refresh token presented again within the grace period: refused, nothing revoked");
                    return Ok(RefreshOutcome::RetryWithinGrace);
                }
                Judgement::Reuse => {
                    self.revoke_grant(&record.gid).await?;
                    return Ok(RefreshOutcome::Reused { gid: record.gid });
                }
                Judgement::Rotate => {}
            }
            let token_scopes = record.scopes();
            if requested.is_some_and(|r| !token_scopes.contains_all(r)) {
                return Ok(RefreshOutcome::ScopeTooWide);
            }
            let grant = match self.grant(&record.gid).await? {
                Some(g) if g.serves(client_id) => g,
                _ => return Ok(RefreshOutcome::Invalid),
            };
            let (new_token, new_record, put_new) =
                new_refresh_token(&grant, &token_scopes, now, record.auth_time)?;
            let mut spent = record.clone();
            spent.spent_at = Some(now);
            spent.successor = Some(crypto::sha256_hex(new_token.expose_secret().as_bytes()));
            spent.version = record.version + 1;
            let ops = vec![
                Op::Put {
                    table: Table::OAuth,
                    item: Item::new(refresh_pk(&hash), "refresh", &spent)?
                        .with_version(spent.version)
                        .expiring(record.expires_at),
                    cond: Cond::Version(record.version),
                },
                put_new,
            ];
            match self.write(ops).await {
                Ok(()) => {
                    return Ok(RefreshOutcome::Rotated(Box::new(Rotation {
                        token: new_token,
                        record: new_record,
                        grant,
                    })));
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
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
