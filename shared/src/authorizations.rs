//! Named authorizations (Heroku AppLink's JWT authorizations): credentials obtained through
//! the JWT bearer grant, kept for an app under a developer name and an alias, which the app
//! fetches by either. The record and its rules are `identity_core::authorization`'s.
//!
//! The access token has to be handed back to the app, so it cannot be kept as a hash. It
//! is kept sealed instead (AES-256-GCM, bound to the app and the name) under a key derived
//! from the access-token signing key, so the table alone yields no usable token; after two
//! signing-key rotations (the token is long expired by then) it no longer opens.

use async_trait::async_trait;
use identity_core::authorization::{self as rules, AliasPointer, alias_sk, name_sk, pk};

pub use identity_core::authorization::{
    AuthorizationError, NamedAuthorization, default_alias, valid_alias, valid_developer_name,
};

use crate::crypto::AeadKey;
use crate::secret::SecretString;
use crate::secrets::SigningKeys;
use crate::store::{Store, Table};

const SEAL_LABEL: &str = "identity named authorization v1";

/// Sealing keys for stored tokens, derived from the signing keys (current seals; current
/// and previous open).
pub struct TokenSeal {
    current: AeadKey,
    previous: Option<AeadKey>,
}

impl std::fmt::Debug for TokenSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSeal([redacted])")
    }
}

impl TokenSeal {
    pub fn from_signing_keys(keys: &SigningKeys) -> Result<Self, crate::crypto::CryptoError> {
        Ok(Self {
            current: AeadKey::derive(&keys.current.pkcs8_der, SEAL_LABEL)?,
            previous: keys
                .previous
                .as_ref()
                .map(|k| AeadKey::derive(&k.pkcs8_der, SEAL_LABEL))
                .transpose()?,
        })
    }

    fn open(&self, sealed: &str, aad: &[u8]) -> Option<Vec<u8>> {
        self.current
            .open(sealed, aad)
            .or_else(|| self.previous.as_ref()?.open(sealed, aad))
    }
}

/// What a new named authorization is made of.
#[derive(Debug)]
pub struct NewAuthorization<'a> {
    pub developer_name: &'a str,
    pub alias: &'a str,
    pub app_id: &'a str,
    pub client_id: &'a str,
    pub account_id: &'a str,
    pub email: &'a str,
    pub scope: &'a str,
    pub instance_url: &'a str,
    pub access_token: &'a SecretString,
    pub issued_at: i64,
    pub expires_at: i64,
}

fn aad(app_id: &str, name: &str) -> Vec<u8> {
    format!("{app_id}\n{name}").into_bytes()
}

/// Sealing and opening a named authorization's token (the record is
/// `identity_core::authorization`'s, which never sees the token in the clear).
pub trait Sealing: Sized {
    /// Builds the record, sealing the token.
    fn new(n: &NewAuthorization<'_>, seal: &TokenSeal, now: i64) -> Self;
    /// The access token, if the seal still opens (it does until two signing-key rotations).
    fn access_token(&self, seal: &TokenSeal) -> Option<SecretString>;
}

impl Sealing for NamedAuthorization {
    fn new(n: &NewAuthorization<'_>, seal: &TokenSeal, now: i64) -> Self {
        Self {
            developer_name: n.developer_name.to_string(),
            alias: n.alias.to_string(),
            app_id: n.app_id.to_string(),
            client_id: n.client_id.to_string(),
            account_id: n.account_id.to_string(),
            email: n.email.to_string(),
            scope: n.scope.to_string(),
            instance_url: n.instance_url.to_string(),
            issued_at: n.issued_at,
            expires_at: n.expires_at,
            created_at: now,
            sealed_token: seal
                .current
                .seal(
                    n.access_token.expose_secret().as_bytes(),
                    &aad(n.app_id, n.developer_name),
                )
                .into(),
            version: 1,
        }
    }

    fn access_token(&self, seal: &TokenSeal) -> Option<SecretString> {
        let plain = seal.open(&self.sealed_token, &aad(&self.app_id, &self.developer_name))?;
        String::from_utf8(plain).ok().map(SecretString::new)
    }
}

#[async_trait]
pub trait NamedAuthorizations {
    /// Saves the authorization under its developer name and alias. A second save under the
    /// same name replaces the first (fresh credentials, as CI re-runs `authorization add`);
    /// an alias held by another name of the same app is refused.
    async fn save_authorization(
        &self,
        auth: &NamedAuthorization,
    ) -> Result<NamedAuthorization, AuthorizationError>;
    /// By developer name first, then by alias.
    async fn authorization(
        &self,
        app_id: &str,
        name_or_alias: &str,
    ) -> Result<Option<NamedAuthorization>, AuthorizationError>;
    async fn list_authorizations(
        &self,
        app_id: &str,
    ) -> Result<Vec<NamedAuthorization>, AuthorizationError>;
    /// Removes it (name and alias); `false` if there was none.
    async fn remove_authorization(
        &self,
        app_id: &str,
        developer_name: &str,
    ) -> Result<bool, AuthorizationError>;
}

async fn by_name(
    store: &Store,
    app_id: &str,
    name: &str,
) -> Result<Option<NamedAuthorization>, AuthorizationError> {
    Ok(store
        .get_versioned(Table::JwtClients, &pk(app_id), &name_sk(name))
        .await?)
}

#[async_trait]
impl NamedAuthorizations for Store {
    async fn save_authorization(
        &self,
        auth: &NamedAuthorization,
    ) -> Result<NamedAuthorization, AuthorizationError> {
        let app = &auth.app_id;
        let holder = if valid_alias(&auth.alias) {
            self.get::<AliasPointer>(Table::JwtClients, &pk(app), &alias_sk(&auth.alias))
                .await?
                .map(|p| p.developer_name)
        } else {
            None
        };
        let existing = if valid_developer_name(&auth.developer_name) {
            by_name(self, app, &auth.developer_name).await?
        } else {
            None
        };
        let plan = rules::save(auth, holder.as_deref(), existing.as_ref())?;
        self.apply(plan)
            .await
            .map_err(crate::store::conflict_as(AuthorizationError::Changed))
    }

    async fn authorization(
        &self,
        app_id: &str,
        name_or_alias: &str,
    ) -> Result<Option<NamedAuthorization>, AuthorizationError> {
        if valid_developer_name(name_or_alias)
            && let Some(a) = by_name(self, app_id, name_or_alias).await?
        {
            return Ok(Some(a));
        }
        if !valid_alias(name_or_alias) {
            return Ok(None);
        }
        match self
            .get::<AliasPointer>(Table::JwtClients, &pk(app_id), &alias_sk(name_or_alias))
            .await?
        {
            Some(p) => by_name(self, app_id, &p.developer_name).await,
            None => Ok(None),
        }
    }

    async fn list_authorizations(
        &self,
        app_id: &str,
    ) -> Result<Vec<NamedAuthorization>, AuthorizationError> {
        let items = self
            .backend()
            .query(Table::JwtClients, &pk(app_id), "name#", self.now())
            .await?;
        items.iter().map(|i| Ok(i.parse_versioned()?)).collect()
    }

    async fn remove_authorization(
        &self,
        app_id: &str,
        developer_name: &str,
    ) -> Result<bool, AuthorizationError> {
        let Some(existing) = by_name(self, app_id, developer_name).await? else {
            return Ok(false);
        };
        Ok(self.try_apply(rules::remove(&existing)).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{SecretKind, generate};

    fn keys(doc: serde_json::Value) -> SigningKeys {
        SigningKeys::parse(&SecretString::new(doc.to_string())).unwrap()
    }

    #[test]
    fn sealed_token_opens_after_one_rotation_only_for_its_record() {
        let k1 = generate(SecretKind::Signing).unwrap();
        let k2 = generate(SecretKind::Signing).unwrap();
        let k3 = generate(SecretKind::Signing).unwrap();
        let seal1 =
            TokenSeal::from_signing_keys(&keys(serde_json::json!({ "current": k1 }))).unwrap();
        let token = SecretString::new("the-access-token");
        let n = NewAuthorization {
            developer_name: "org_jwt",
            alias: "applink:org_jwt",
            app_id: "app-1",
            client_id: "jwt_x",
            account_id: "acct",
            email: "a@example.com",
            scope: "api",
            instance_url: "https://id.example.com",
            access_token: &token,
            issued_at: 0,
            expires_at: 3600,
        };
        let a = NamedAuthorization::new(&n, &seal1, 0);
        assert!(!format!("{a:?}").contains(a.sealed_token.as_str()));
        assert!(
            !serde_json::to_string(&a)
                .unwrap()
                .contains("the-access-token")
        );
        assert!(
            !a.public_json()
                .to_string()
                .contains(a.sealed_token.as_str())
        );
        assert_eq!(
            a.access_token(&seal1).unwrap().expose_secret(),
            "the-access-token"
        );
        let rotated = TokenSeal::from_signing_keys(&keys(
            serde_json::json!({ "current": k2.clone(), "previous": k1 }),
        ))
        .unwrap();
        assert!(a.access_token(&rotated).is_some());
        let twice = TokenSeal::from_signing_keys(&keys(
            serde_json::json!({ "current": k3, "previous": k2 }),
        ))
        .unwrap();
        assert!(a.access_token(&twice).is_none());
        let mut moved = a.clone();
        moved.developer_name = "other".into();
        assert!(moved.access_token(&seal1).is_none(), "bound to its name");
    }
}
