//! Add-on SSO on the platform side. The token formulas, the form the platform POSTs to an
//! add-on's `sso_url` and the partner-side verifier live in the small `identity-addon-verify`
//! crate (re-exported here), which partners can depend on without this one; here the store
//! serves as the verifier's replay guard (a conditional write on SQLite and DynamoDB), and
//! a form body is decoded.

pub use identity_addon_verify::*;

use crate::store::{SingleUse, Store, StoreError};

/// The single-use kind under which verified requests are recorded.
pub const REPLAY_KIND: &str = "addon-sso";

impl ReplayGuard for Store {
    type Error = StoreError;

    async fn first_use(&self, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        self.mark_used(REPLAY_KIND, key, expires_at).await
    }
}

/// Decodes an `application/x-www-form-urlencoded` body and reads the form in it.
pub fn form_from_urlencoded(body: &[u8]) -> Result<SsoForm, VerifyError> {
    let pairs = crate::http::fields::read_pairs(body)
        .map_err(|_| VerifyError::Malformed("the body is not a form"))?;
    SsoForm::from_pairs(&pairs)
}
