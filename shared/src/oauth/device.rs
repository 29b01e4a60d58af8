//! The device authorization grant (RFC 8628), for `identity login` and other devices without
//! a browser: a device code (256 random bits, stored as its hash) that the device polls
//! with, and a short user code the person types at `/device` after signing in.
//!
//! A request lives [`DEVICE_TTL_SECS`]; its record is kept a while longer so a late poll
//! learns `expired_token` rather than `invalid_grant`. Approval, denial, the polling pace and
//! the final exchange are versioned writes: the exchange is a conditional delete, so a device
//! code yields tokens once.

use async_trait::async_trait;

use super::grant::Grants;
use crate::crypto;
use crate::secret::SecretString;
use crate::store::{Store, StoreError, Table};

use identity_core::device::{self, UserCodePointer, user_code_pk};
pub use identity_core::device::{
    DEVICE_TTL_SECS, DeviceRequest, DeviceState, GRANT_TYPE, POLL_INTERVAL_SECS, Polled,
    USER_CODE_ALPHABET, device_pk, normalize_user_code,
};

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
    /// A device's poll (RFC 8628 §3.4), pacing included, as one plan
    /// (`identity_core::device::poll`): an approval is spent in the write that stores the
    /// refresh token (`fresh_token`'s), so a device code yields tokens once.
    async fn poll_device(
        &self,
        device_code: &str,
        client_id: &str,
        fresh_token: &SecretString,
    ) -> Result<Polled, StoreError>;
}

#[async_trait]
impl DeviceRequests for Store {
    async fn start_device_request(
        &self,
        client_id: &str,
        scope: &str,
        address: Option<std::net::IpAddr>,
    ) -> Result<(SecretString, DeviceRequest), StoreError> {
        let started_from = address.map(|a| a.to_string());
        // Each load draws a device code and a user code; a user-code collision is refused
        // by the Absent condition and the next attempt draws again.
        self.run(
            |_| async {
                let code = crypto::random_token();
                let hash = crypto::sha256_hex(code.expose_secret().as_bytes());
                Ok((code, hash, new_user_code()))
            },
            |(code, hash, user_code), now| {
                let from = started_from.clone();
                Ok(
                    device::start(client_id, scope, from, (&hash, &user_code), now)?
                        .map(|request| (code, request)),
                )
            },
        )
        .await
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
        self.run(
            |_| read(self, &request.device_hash),
            |current, now| device::answer(current, state.clone(), now),
        )
        .await
    }

    async fn poll_device(
        &self,
        device_code: &str,
        client_id: &str,
        fresh_token: &SecretString,
    ) -> Result<Polled, StoreError> {
        let hash = crypto::sha256_hex(device_code.as_bytes());
        let fresh_hash = crypto::sha256_hex(fresh_token.expose_secret().as_bytes());
        self.run(
            |_| async {
                let request = read(self, &hash).await?;
                let grant = match request.as_ref().map(|r| &r.state) {
                    Some(DeviceState::Approved { gid, .. }) => self.grant(gid).await?,
                    _ => None,
                };
                Ok(device::Loaded { request, grant })
            },
            |loaded, now| device::poll(loaded, client_id, &fresh_hash, now),
        )
        .await
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
