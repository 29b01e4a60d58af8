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

use identity_core::device::KEPT_AFTER_EXPIRY_SECS;
pub use identity_core::device::{
    DEVICE_TTL_SECS, DeviceRequest, DeviceState, GRANT_TYPE, POLL_INTERVAL_SECS, Poll,
    PollDecision, USER_CODE_ALPHABET, device_pk, normalize_user_code, poll,
};

fn user_code_pk(normalized: &str) -> String {
    format!("user-code#{normalized}")
}

/// A fresh user code: eight consonants in two groups of four, as `BCDF-GHJK` (also the
/// code of a "log in as" link).
pub fn new_user_code() -> String {
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
    /// Starts a request from `address`: (device code, the stored request).
    async fn start_device_request(
        &self,
        client_id: &str,
        scope: &str,
        address: Option<std::net::IpAddr>,
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
    /// A device's poll (RFC 8628 §3.4), pacing included. An approval is not spent here: its
    /// `take` goes into the write that records the tokens.
    async fn poll_device(&self, device_code: &str, client_id: &str) -> Result<Poll, StoreError>;
}

#[async_trait]
impl DeviceRequests for Store {
    async fn start_device_request(
        &self,
        client_id: &str,
        scope: &str,
        address: Option<std::net::IpAddr>,
    ) -> Result<(SecretString, DeviceRequest), StoreError> {
        let now = self.now();
        // A user-code collision is refused by the Absent condition: try another.
        for _ in 0..5 {
            let code = crypto::random_token();
            let hash = crypto::sha256_hex(code.expose_secret().as_bytes());
            let request = DeviceRequest {
                client_id: client_id.into(),
                scope: scope.to_string(),
                user_code: new_user_code(),
                created_at: now,
                started_from: address.map(|a| a.to_string()),
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
        let current = read(self, &hash).await?;
        match poll(current.as_ref(), client_id, self.now())? {
            PollDecision::Answer(answer) => Ok(answer),
            PollDecision::Pace { op, slow_down } => match self.write(vec![op]).await {
                Ok(()) if !slow_down => Ok(Poll::Pending),
                // A concurrent poll moved the record: that is polling too fast.
                Ok(()) | Err(StoreError::Conflict) => Ok(Poll::SlowDown),
                Err(e) => Err(e),
            },
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
