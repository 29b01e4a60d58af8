//! Authorization codes: 256 random bits, stored as their SHA-256 under the single-use kind
//! `oauth-code` for [`CODE_TTL_SECS`], bound to the client, redirect URI, PKCE challenge,
//! account, scopes and grant. Redeeming one is a plan (`identity_core::code::redeem`): the
//! code is taken (a conditional delete: exactly one caller wins) in the same write as the
//! "spent" record naming the grant and the refresh token, so the code is spent if and only
//! if its tokens exist; a second use by its client revokes the grant, and every token of
//! its first use with it. A code presented with the wrong client, redirect URI or verifier
//! is taken alone.

use async_trait::async_trait;

use super::CODE_TTL_SECS;
use super::grant::Grants;
use crate::crypto;
use crate::secret::SecretString;
use crate::store::{SingleUse, Store, StoreError, Table};
pub use identity_core::code::{
    CodeGrant, Issue, Issued, KIND, Loaded, Presented, Redeemed, Refusal, Spent, exchange,
    spent_op, spent_pk,
};

/// What presenting a code came to, written.
#[derive(Debug)]
pub struct Redemption {
    pub outcome: Redeemed,
    /// The refresh token whose record [`Redeemed::Issued`] stored; for any other outcome
    /// it was never stored and means nothing.
    pub refresh_token: SecretString,
}

/// The hash a code is stored under.
pub fn code_hash(code: &str) -> String {
    crypto::sha256_hex(code.as_bytes())
}

/// Codes we issue are 43 characters; anything far off is not worth a lookup.
fn plausible(code: &str) -> bool {
    !code.is_empty() && code.len() <= 256
}

#[async_trait]
pub trait AuthCodes {
    /// Stores a new code for [`CODE_TTL_SECS`] and returns it (the only time it exists
    /// outside the client).
    async fn issue_code(&self, grant: &CodeGrant) -> Result<SecretString, StoreError>;
    /// Redeems a code presented by an authenticated client: loads it (or what its
    /// redemption left) and its grant, decides with `identity_core::code::redeem`, and
    /// writes the plan.
    async fn redeem_code(
        &self,
        code: &str,
        presented: Presented<'_>,
    ) -> Result<Redemption, StoreError>;
    /// The live code, if any (read only: operators' and tests' view).
    async fn live_code(&self, code: &str) -> Result<Option<CodeGrant>, StoreError>;
}

fn code_of(body: serde_json::Value) -> Result<CodeGrant, StoreError> {
    serde_json::from_value(body).map_err(|e| crate::store::serde_failure("code record", &e))
}

async fn load(store: &Store, hash: &str) -> Result<Loaded, StoreError> {
    let live = match store.peek_single_use(KIND, hash).await? {
        Some((body, version)) => Some((code_of(body)?, version)),
        None => None,
    };
    let spent = match live {
        Some(_) => None,
        None => {
            store
                .get::<Spent>(Table::OAuth, &spent_pk(hash), "spent")
                .await?
        }
    };
    let gid = match (&live, &spent) {
        (Some((code, _)), _) => Some(code.gid.as_str()),
        (None, Some(spent)) => Some(spent.gid.as_str()),
        (None, None) => None,
    };
    let grant = match gid {
        Some(gid) => store.grant(gid).await?,
        None => None,
    };
    Ok(Loaded { live, spent, grant })
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

    async fn redeem_code(
        &self,
        code: &str,
        presented: Presented<'_>,
    ) -> Result<Redemption, StoreError> {
        let refresh_token = crypto::random_token();
        if !plausible(code) {
            return Ok(Redemption {
                outcome: Redeemed::Invalid,
                refresh_token,
            });
        }
        let hash = code_hash(code);
        let fresh_hash = crypto::sha256_hex(refresh_token.expose_secret().as_bytes());
        let outcome = self
            .run(
                |_| load(self, &hash),
                |loaded, now| {
                    identity_core::code::redeem(presented, &hash, loaded, &fresh_hash, now)
                },
            )
            .await?;
        Ok(Redemption {
            outcome,
            refresh_token,
        })
    }

    async fn live_code(&self, code: &str) -> Result<Option<CodeGrant>, StoreError> {
        if !plausible(code) {
            return Ok(None);
        }
        self.peek_single_use(KIND, &code_hash(code))
            .await?
            .map(|(body, _)| code_of(body))
            .transpose()
    }
}
