//! Named authorizations (Heroku AppLink's JWT authorizations): credentials obtained through
//! the JWT bearer grant, kept for an app under a developer name and an alias, which the app
//! fetches by either.
//!
//! The access token has to be handed back to the app, so it cannot be kept as a hash. It
//! is kept sealed instead (AES-256-GCM, bound to the app and the name) under a key derived
//! from the access-token signing key, so the table alone yields no usable token; after two
//! signing-key rotations (the token is long expired by then) it no longer opens.

use async_trait::async_trait;
use identity_core::digest::Sealed;
use serde::{Deserialize, Serialize};

use crate::crypto::AeadKey;
use crate::secret::SecretString;
use crate::secrets::SigningKeys;
use crate::store::{Cond, Item, Op, Store, StoreError, Table};

const SEAL_LABEL: &str = "identity named authorization v1";

/// Developer names: 3–30 characters, a letter first, then letters, digits, `_` or `-`.
pub fn valid_developer_name(name: &str) -> bool {
    (3..=30).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Aliases: 3–80 characters of letters, digits and `:_-.`, a letter first (`applink:NAME`).
pub fn valid_alias(alias: &str) -> bool {
    (3..=80).contains(&alias.len())
        && alias.starts_with(|c: char| c.is_ascii_alphabetic())
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'))
}

/// The alias a named authorization gets when none is given.
pub fn default_alias(name: &str) -> String {
    format!("applink:{name}")
}

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

/// A named authorization. Its token is kept sealed (and prints as `[redacted]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedAuthorization {
    pub developer_name: String,
    pub alias: String,
    pub app_id: String,
    /// The JWT client the grant went through.
    pub client_id: String,
    pub account_id: String,
    pub email: String,
    pub scope: String,
    pub instance_url: String,
    pub issued_at: i64,
    /// When the access token expires.
    pub expires_at: i64,
    pub created_at: i64,
    sealed_token: Sealed,
    #[serde(skip)]
    pub version: i64,
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

impl NamedAuthorization {
    /// Builds the record, sealing the token.
    pub fn new(n: &NewAuthorization<'_>, seal: &TokenSeal, now: i64) -> Self {
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

    /// The access token, if the seal still opens (it does until two signing-key rotations).
    pub fn access_token(&self, seal: &TokenSeal) -> Option<SecretString> {
        let plain = seal.open(&self.sealed_token, &aad(&self.app_id, &self.developer_name))?;
        String::from_utf8(plain).ok().map(SecretString::new)
    }

    /// The operator-facing JSON: never the token.
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "developer_name": self.developer_name,
            "alias": self.alias,
            "app_id": self.app_id,
            "client_id": self.client_id,
            "user": self.email,
            "account_id": self.account_id,
            "scope": self.scope,
            "instance_url": self.instance_url,
            "issued_at": crate::clock::rfc3339(self.issued_at),
            "expires_at": crate::clock::rfc3339(self.expires_at),
            "created_at": crate::clock::rfc3339(self.created_at),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizationError {
    #[error("developer names are 3 to 30 letters, digits, '_' or '-', starting with a letter")]
    InvalidName,
    #[error("aliases are 3 to 80 letters, digits, ':', '_', '-' or '.', starting with a letter")]
    InvalidAlias,
    #[error("the alias {0:?} belongs to another authorization of this app")]
    AliasTaken(String),
    #[error("the authorization changed meanwhile; try again")]
    Changed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn pk(app_id: &str) -> String {
    format!("authz#{app_id}")
}
fn name_sk(name: &str) -> String {
    format!("name#{name}")
}
fn alias_sk(alias: &str) -> String {
    format!("alias#{alias}")
}

#[derive(Serialize, Deserialize)]
struct AliasPointer {
    developer_name: String,
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

identity_core::versioned!(NamedAuthorization);

#[async_trait]
impl NamedAuthorizations for Store {
    async fn save_authorization(
        &self,
        auth: &NamedAuthorization,
    ) -> Result<NamedAuthorization, AuthorizationError> {
        if !valid_developer_name(&auth.developer_name) {
            return Err(AuthorizationError::InvalidName);
        }
        if !valid_alias(&auth.alias) {
            return Err(AuthorizationError::InvalidAlias);
        }
        let app = &auth.app_id;
        if let Some(p) = self
            .get::<AliasPointer>(Table::JwtClients, &pk(app), &alias_sk(&auth.alias))
            .await?
            && p.developer_name != auth.developer_name
        {
            return Err(AuthorizationError::AliasTaken(auth.alias.clone()));
        }
        let existing = by_name(self, app, &auth.developer_name).await?;
        let mut next = auth.clone();
        let mut ops = Vec::new();
        let pointer = Item::new(
            pk(app),
            alias_sk(&auth.alias),
            &AliasPointer {
                developer_name: auth.developer_name.clone(),
            },
        )?;
        match &existing {
            Some(old) => {
                next.created_at = old.created_at;
                next.version = old.version + 1;
                ops.push(Op::Put {
                    table: Table::JwtClients,
                    item: Item::new(pk(app), name_sk(&next.developer_name), &next)?
                        .with_version(next.version),
                    cond: Cond::Version(old.version),
                });
                if old.alias != next.alias {
                    ops.push(Op::Delete {
                        table: Table::JwtClients,
                        pk: pk(app),
                        sk: alias_sk(&old.alias),
                        cond: Cond::Always,
                    });
                    ops.push(Op::Put {
                        table: Table::JwtClients,
                        item: pointer,
                        cond: Cond::Absent,
                    });
                }
            }
            None => {
                next.version = 1;
                ops.push(Op::Put {
                    table: Table::JwtClients,
                    item: Item::new(pk(app), name_sk(&next.developer_name), &next)?,
                    cond: Cond::Absent,
                });
                ops.push(Op::Put {
                    table: Table::JwtClients,
                    item: pointer,
                    cond: Cond::Absent,
                });
            }
        }
        match self.write(ops).await {
            Ok(()) => Ok(next),
            Err(StoreError::Conflict) => Err(AuthorizationError::Changed),
            Err(e) => Err(e.into()),
        }
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
        let ops = vec![
            Op::Delete {
                table: Table::JwtClients,
                pk: pk(app_id),
                sk: name_sk(developer_name),
                cond: Cond::Live,
            },
            Op::Delete {
                table: Table::JwtClients,
                pk: pk(app_id),
                sk: alias_sk(&existing.alias),
                cond: Cond::Always,
            },
        ];
        match self.write(ops).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
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
    fn names_and_aliases_follow_the_rules() {
        for ok in ["org_jwt", "ci-auth", "abc", &"a".repeat(30)] {
            assert!(valid_developer_name(ok), "{ok}");
        }
        for bad in ["ab", "1abc", "_abc", "a b c", "applink:x", &"a".repeat(31)] {
            assert!(!valid_developer_name(bad), "{bad}");
        }
        assert!(valid_alias(&default_alias("org_jwt")));
        assert!(!valid_alias("applink:a/b"));
        assert!(!valid_alias(":abc"));
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
