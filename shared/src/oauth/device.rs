//! The device authorization grant (RFC 8628), for `identity login` and other devices without
//! a browser: a device code (256 random bits, stored as its hash) that the device polls
//! with, and a short user code the person types at `/device` after signing in.
//!
//! A request lives [`DEVICE_TTL_SECS`]; its record is kept a while longer so a late poll
//! learns `expired_token` rather than `invalid_grant`. Approval, denial, the polling pace and
//! the final exchange are versioned writes: the exchange is a conditional delete, so a device
//! code yields tokens once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::secret::SecretString;
use crate::store::{Cond, Item, Op, Store, StoreError, Table};

pub const DEVICE_TTL_SECS: i64 = 600;
/// How long the record outlives the request (for `expired_token`).
const KEPT_AFTER_EXPIRY_SECS: i64 = 600;
/// The polling interval a device starts with; `slow_down` adds 5 s (RFC 8628 §3.5).
pub const POLL_INTERVAL_SECS: i64 = 5;
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §6.1: 20 consonants, no vowels (no words), no look-alikes; 8 characters
/// (20^8 ≈ 2^34.6) shown as two groups of four joined by a dash.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceState {
    Pending,
    Approved { account_id: String, gid: String },
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub client_id: String,
    pub scope: String,
    /// The user code as shown (two groups of four letters joined by a dash).
    pub user_code: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub interval: i64,
    #[serde(default)]
    pub last_poll_at: Option<i64>,
    pub state: DeviceState,
    #[serde(skip)]
    pub version: i64,
    /// The hash the record is stored under (not part of the body).
    #[serde(skip)]
    pub device_hash: String,
}
identity_core::versioned!(DeviceRequest);

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    Pending,
    SlowDown,
    Denied,
    Expired,
    /// Unknown device code, or another client's.
    Invalid,
    /// Approved, and this caller took it: issue the tokens.
    Approved {
        account_id: String,
        gid: String,
        scope: String,
    },
}

fn device_pk(hash: &str) -> String {
    format!("device#{hash}")
}

fn user_code_pk(normalized: &str) -> String {
    format!("user-code#{normalized}")
}

/// A typed user code with dashes and spaces dropped and letters upper-cased; `None` when it
/// cannot be one of ours.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

fn new_user_code() -> String {
    let bytes = crypto::random_bytes(8);
    let chars: String = bytes
        .iter()
        .map(|b| USER_CODE_ALPHABET[(*b as usize) % USER_CODE_ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

#[derive(Serialize, Deserialize)]
struct UserCodePointer {
    device_hash: String,
}

#[async_trait]
pub trait DeviceRequests {
    /// Starts a request: (device code, the stored request).
    async fn start_device_request(
        &self,
        client_id: &str,
        scope: &str,
    ) -> Result<(SecretString, DeviceRequest), StoreError>;
    /// The live (not expired) request a typed user code names.
    async fn device_request_by_user_code(
        &self,
        typed: &str,
    ) -> Result<Option<DeviceRequest>, StoreError>;
    /// The person's answer to a pending request; `false` if it was no longer pending.
    async fn answer_device_request(
        &self,
        request: &DeviceRequest,
        state: DeviceState,
    ) -> Result<bool, StoreError>;
    /// A device's poll (RFC 8628 §3.4), pacing included.
    async fn poll_device(&self, device_code: &str, client_id: &str) -> Result<Poll, StoreError>;
}

#[async_trait]
impl DeviceRequests for Store {
    async fn start_device_request(
        &self,
        client_id: &str,
        scope: &str,
    ) -> Result<(SecretString, DeviceRequest), StoreError> {
        let now = self.now();
        // A user-code collision is refused by the Absent condition: try another.
        for _ in 0..5 {
            let code = crypto::random_token();
            let hash = crypto::sha256_hex(code.expose_secret().as_bytes());
            let request = DeviceRequest {
                client_id: client_id.to_string(),
                scope: scope.to_string(),
                user_code: new_user_code(),
                created_at: now,
                expires_at: now + DEVICE_TTL_SECS,
                interval: POLL_INTERVAL_SECS,
                last_poll_at: None,
                state: DeviceState::Pending,
                version: 1,
                device_hash: hash.clone(),
            };
            let normalized = normalize_user_code(&request.user_code).expect("our own code");
            let ops = vec![
                Op::Put {
                    table: Table::OAuth,
                    item: Item::new(device_pk(&hash), "device", &request)?
                        .expiring(request.expires_at + KEPT_AFTER_EXPIRY_SECS),
                    cond: Cond::Absent,
                },
                Op::Put {
                    table: Table::OAuth,
                    item: Item::new(
                        user_code_pk(&normalized),
                        "user-code",
                        &UserCodePointer {
                            device_hash: hash.clone(),
                        },
                    )?
                    .expiring(request.expires_at),
                    cond: Cond::Absent,
                },
            ];
            match self.write(ops).await {
                Ok(()) => return Ok((code, request)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn device_request_by_user_code(
        &self,
        typed: &str,
    ) -> Result<Option<DeviceRequest>, StoreError> {
        let Some(normalized) = normalize_user_code(typed) else {
            return Ok(None);
        };
        let Some(pointer) = self
            .get::<UserCodePointer>(Table::OAuth, &user_code_pk(&normalized), "user-code")
            .await?
        else {
            return Ok(None);
        };
        Ok(read(self, &pointer.device_hash)
            .await?
            .filter(|r| r.expires_at > self.now()))
    }

    async fn answer_device_request(
        &self,
        request: &DeviceRequest,
        state: DeviceState,
    ) -> Result<bool, StoreError> {
        let Some(current) = read(self, &request.device_hash).await? else {
            return Ok(false);
        };
        if current.state != DeviceState::Pending || current.expires_at <= self.now() {
            return Ok(false);
        }
        let mut next = current.clone();
        next.state = state;
        match save(self, &current, next).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn poll_device(&self, device_code: &str, client_id: &str) -> Result<Poll, StoreError> {
        let hash = crypto::sha256_hex(device_code.as_bytes());
        let Some(current) = read(self, &hash).await? else {
            return Ok(Poll::Invalid);
        };
        if !crypto::constant_time_eq(current.client_id.as_bytes(), client_id.as_bytes()) {
            return Ok(Poll::Invalid);
        }
        let now = self.now();
        if current.expires_at <= now {
            return Ok(Poll::Expired);
        }
        match &current.state {
            DeviceState::Approved { account_id, gid } => {
                // The exchange: exactly one poller deletes the approved record.
                let taken = self
                    .write(vec![Op::Delete {
                        table: Table::OAuth,
                        pk: device_pk(&hash),
                        sk: "device".into(),
                        cond: Cond::Version(current.version),
                    }])
                    .await;
                match taken {
                    Ok(()) => Ok(Poll::Approved {
                        account_id: account_id.clone(),
                        gid: gid.clone(),
                        scope: current.scope.clone(),
                    }),
                    Err(StoreError::Conflict) => Ok(Poll::Invalid),
                    Err(e) => Err(e),
                }
            }
            DeviceState::Denied => Ok(Poll::Denied),
            DeviceState::Pending => {
                let too_soon = current
                    .last_poll_at
                    .is_some_and(|last| now - last < current.interval);
                let mut next = current.clone();
                next.last_poll_at = Some(now);
                if too_soon {
                    next.interval += 5;
                }
                match save(self, &current, next).await {
                    // A concurrent poll moved the record: that is polling too fast.
                    Ok(()) | Err(StoreError::Conflict) if too_soon => Ok(Poll::SlowDown),
                    Ok(()) => Ok(Poll::Pending),
                    Err(StoreError::Conflict) => Ok(Poll::SlowDown),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

async fn read(store: &Store, hash: &str) -> Result<Option<DeviceRequest>, StoreError> {
    Ok(store
        .get_versioned::<DeviceRequest>(Table::OAuth, &device_pk(hash), "device")
        .await?
        .map(|mut r| {
            r.device_hash = hash.to_string();
            r
        }))
}

async fn save(
    store: &Store,
    current: &DeviceRequest,
    mut next: DeviceRequest,
) -> Result<(), StoreError> {
    next.version = current.version + 1;
    let item = Item::new(device_pk(&current.device_hash), "device", &next)?
        .with_version(next.version)
        .expiring(current.expires_at + KEPT_AFTER_EXPIRY_SECS);
    store
        .write(vec![Op::Put {
            table: Table::OAuth,
            item,
            cond: Cond::Version(current.version),
        }])
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_normalize_and_reject_other_shapes() {
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        let n = normalize_user_code(&code.to_lowercase()).unwrap();
        assert_eq!(n, code.replace('-', ""));
        assert!(normalize_user_code("BCDF GHJK").is_some());
        assert!(
            normalize_user_code("ABCD-EFGH").is_none(),
            "vowels never appear"
        );
        assert!(normalize_user_code("BCDF-GHJ").is_none());
    }
}
