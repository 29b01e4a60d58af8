//! Authorization codes: 256 random bits, stored as their SHA-256 under the single-use kind
//! `oauth-code` for [`CODE_TTL_SECS`], bound to the client, redirect URI, PKCE challenge,
//! account, scopes and grant. Redeeming looks the code up; the token endpoint then takes it
//! (a conditional delete: exactly one caller wins) in the same write as the "spent" record
//! naming the grant and the refresh token, so the code is spent if and only if its tokens
//! exist, and a second use of the code finds the grant and revokes every token the first use
//! issued. A code presented with the wrong client, redirect URI or verifier is taken alone.

use async_trait::async_trait;

use super::CODE_TTL_SECS;
use super::grant::Grants;
use crate::crypto;
use crate::secret::SecretString;
use crate::store::{Op, SingleUse, Store, StoreError, Table};
pub use identity_core::code::{
    CodeGrant, Issue, Presented, Refusal, Spent, exchange, spent_op, spent_pk,
};

const KIND: &str = "oauth-code";

/// What looking up a presented code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The code is live. `take` spends it: in the write that records its tokens, or alone
    /// when the exchange is refused. Of concurrent writes carrying it, exactly one succeeds.
    Found {
        code_hash: String,
        grant: CodeGrant,
        take: Box<Op>,
    },
    /// The code was redeemed before: its grant (the tokens of its first use) was revoked.
    Reused { gid: String },
    /// Unknown, expired, or spent without tokens (its exchange was refused).
    Invalid,
}

/// The hash a code is stored under.
pub fn code_hash(code: &str) -> String {
    crypto::sha256_hex(code.as_bytes())
}

#[async_trait]
pub trait AuthCodes {
    /// Stores a new code for [`CODE_TTL_SECS`] and returns it (the only time it exists
    /// outside the client).
    async fn issue_code(&self, grant: &CodeGrant) -> Result<SecretString, StoreError>;
    /// Looks the code up. A code redeemed before, presented again by the client it was
    /// issued to, is a reuse: its grant is revoked here. Presented by anyone else (it
    /// leaked: browser history, logs), it is merely invalid and revokes nothing, so a spent
    /// code is no weapon against its owner.
    async fn look_up_code(&self, code: &str, client_id: &str) -> Result<Redemption, StoreError>;
}

#[async_trait]
impl AuthCodes for Store {
    async fn issue_code(&self, grant: &CodeGrant) -> Result<SecretString, StoreError> {
        let code = crypto::random_token();
        let body = serde_json::to_value(grant)
            .map_err(|e| crate::store::serde_failure("code record", &e))?;
        self.put_single_use(
            KIND,
            &code_hash(code.expose_secret()),
            &body,
            self.now() + CODE_TTL_SECS,
        )
        .await?;
        Ok(code)
    }

    async fn look_up_code(&self, code: &str, client_id: &str) -> Result<Redemption, StoreError> {
        // Codes we issue are 43 characters; anything far off is not worth a lookup.
        if code.is_empty() || code.len() > 256 {
            return Ok(Redemption::Invalid);
        }
        let hash = code_hash(code);
        if let Some((body, take)) = self.peek_single_use(KIND, &hash).await? {
            let grant: CodeGrant = serde_json::from_value(body)
                .map_err(|e| crate::store::serde_failure("code record", &e))?;
            return Ok(Redemption::Found {
                code_hash: hash,
                grant,
                take: Box::new(take),
            });
        }
        match self
            .get::<Spent>(Table::OAuth, &spent_pk(&hash), "spent")
            .await?
        {
            Some(spent)
                if crypto::constant_time_eq(spent.client_id.as_bytes(), client_id.as_bytes()) =>
            {
                self.revoke_grant(&spent.gid).await?;
                Ok(Redemption::Reused { gid: spent.gid })
            }
            Some(_) => {
                tracing::warn!(
                    client_id,
                    "a spent authorization code presented by another client: nothing revoked"
                );
                Ok(Redemption::Invalid)
            }
            None => Ok(Redemption::Invalid),
        }
    }
}
