//! Access tokens revoked one by one (RFC 7009 on an access token): their `jti` is kept
//! until the token would have expired anyway.

use async_trait::async_trait;

use crate::store::{Item, Store, StoreError, Table, record};

fn jti_pk(jti: &str) -> String {
    format!("jti#{jti}")
}

#[async_trait]
pub trait RevokedTokens {
    /// Marks the access token with this `jti` revoked until `exp`.
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StoreError>;
    async fn jti_revoked(&self, jti: &str) -> Result<bool, StoreError>;
}

#[async_trait]
impl RevokedTokens for Store {
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        if exp <= self.now() {
            return Ok(());
        }
        let item = Item::new(jti_pk(jti), "revoked", &serde_json::json!({}))?.expiring(exp);
        self.write(vec![record::set(Table::OAuth, item)]).await
    }

    async fn jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self
            .get_item(Table::OAuth, &jti_pk(jti), "revoked")
            .await?
            .is_some())
    }
}
