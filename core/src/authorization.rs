//! Named authorizations (Heroku AppLink's JWT authorizations): credentials obtained through
//! the JWT bearer grant, kept for an app under a developer name and an alias. The record and
//! the rules of saving and removing it; the token inside is sealed by `identity-shared`
//! (this crate never sees it in the clear). In the JWT clients table: `authz#{app}` /
//! `name#{name}` (versioned) and `authz#{app}` / `alias#{alias}` → the name.

use serde::{Deserialize, Serialize};

use crate::digest::Sealed;
use crate::plan::Plan;
use crate::store::{Cond, Item, Op, StoreError, Table};

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
    /// The access token, sealed to this app and name (`identity-shared`'s `TokenSeal`).
    pub sealed_token: Sealed,
    #[serde(skip)]
    pub version: i64,
}
crate::versioned!(NamedAuthorization);

impl NamedAuthorization {
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

pub fn pk(app_id: &str) -> String {
    format!("authz#{app_id}")
}
pub fn name_sk(name: &str) -> String {
    format!("name#{name}")
}
pub fn alias_sk(alias: &str) -> String {
    format!("alias#{alias}")
}

/// What an alias record holds: the name it stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasPointer {
    pub developer_name: String,
}

/// Saves `auth` under its name and alias, given the name the alias stands for now and the
/// record saved under the name before. A second save under a name replaces the first
/// (fresh credentials, as CI re-runs `authorization add`), keeping its creation time; an
/// alias held by another name of the app is refused. A conflict is a change meanwhile.
pub fn save(
    auth: &NamedAuthorization,
    alias_holder: Option<&str>,
    existing: Option<&NamedAuthorization>,
) -> Result<Plan<NamedAuthorization>, AuthorizationError> {
    if !valid_developer_name(&auth.developer_name) {
        return Err(AuthorizationError::InvalidName);
    }
    if !valid_alias(&auth.alias) {
        return Err(AuthorizationError::InvalidAlias);
    }
    if alias_holder.is_some_and(|holder| holder != auth.developer_name) {
        return Err(AuthorizationError::AliasTaken(auth.alias.clone()));
    }
    let app = &auth.app_id;
    let pointer = Op::Put {
        table: Table::JwtClients,
        item: Item::new(
            pk(app),
            alias_sk(&auth.alias),
            &AliasPointer {
                developer_name: auth.developer_name.clone(),
            },
        )?,
        cond: Cond::Absent,
    };
    let mut next = auth.clone();
    let mut ops = Vec::new();
    let name = name_sk(&next.developer_name);
    match existing {
        Some(old) => {
            next.created_at = old.created_at;
            next.version = old.version + 1;
            let item = Item::new(pk(app), name, &next)?.with_version(next.version);
            ops.push(Op::Put {
                table: Table::JwtClients,
                item,
                cond: Cond::Version(old.version),
            });
            if old.alias != next.alias {
                ops.push(Op::Delete {
                    table: Table::JwtClients,
                    pk: pk(app),
                    sk: alias_sk(&old.alias),
                    cond: Cond::Always,
                });
                ops.push(pointer);
            }
        }
        None => {
            next.version = 1;
            ops.push(Op::Put {
                table: Table::JwtClients,
                item: Item::new(pk(app), name, &next)?,
                cond: Cond::Absent,
            });
            ops.push(pointer);
        }
    }
    Ok(Plan::write(ops, next))
}

/// The authorization (as loaded) goes, name and alias; a conflict: it was gone already.
pub fn remove(existing: &NamedAuthorization) -> Plan<()> {
    let delete = |sk: String, cond| Op::Delete {
        table: Table::JwtClients,
        pk: pk(&existing.app_id),
        sk,
        cond,
    };
    Plan::write(
        vec![
            delete(name_sk(&existing.developer_name), Cond::Live),
            delete(alias_sk(&existing.alias), Cond::Always),
        ],
        (),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, alias: &str) -> NamedAuthorization {
        NamedAuthorization {
            developer_name: name.into(),
            alias: alias.into(),
            app_id: "app-1".into(),
            client_id: "jwt_x".into(),
            account_id: "acct".into(),
            email: "a@example.com".into(),
            scope: "api".into(),
            instance_url: "https://id.example.com".into(),
            issued_at: 10,
            expires_at: 3610,
            created_at: 10,
            sealed_token: Sealed::new("sealed"),
            version: 1,
        }
    }

    #[test]
    fn names_and_aliases_follow_the_rules() {
        for ok in ["org_jwt", "ci-auth", "abc", &"a".repeat(30)] {
            assert!(valid_developer_name(ok), "{ok}");
        }
        for bad in ["ab", "1abc", "_abc", "a b c", "applink:x", &"a".repeat(31)] {
            assert!(!valid_developer_name(bad), "{bad}");
            assert!(matches!(
                save(&sample(bad, "applink:x"), None, None),
                Err(AuthorizationError::InvalidName)
            ));
        }
        assert!(valid_alias(&default_alias("org_jwt")));
        assert!(!valid_alias("applink:a/b"));
        assert!(!valid_alias(":abc"));
    }

    #[test]
    fn an_alias_held_by_another_name_of_the_app_is_refused() {
        let auth = sample("ci-job", "applink:shared");
        assert!(matches!(
            save(&auth, Some("other"), None),
            Err(AuthorizationError::AliasTaken(a)) if a == "applink:shared"
        ));
        assert!(save(&auth, Some("ci-job"), None).is_ok());
    }

    #[test]
    fn saving_again_under_a_name_replaces_it_and_keeps_its_creation_time() {
        let mut old = sample("ci-job", "applink:ci");
        old.created_at = 1;
        old.version = 4;
        let mut fresh = sample("ci-job", "applink:ci2");
        fresh.created_at = 99;
        let plan = save(&fresh, None, Some(&old)).unwrap();
        assert_eq!((plan.outcome.created_at, plan.outcome.version), (1, 5));
        assert!(matches!(
            plan.ops[0],
            Op::Put {
                cond: Cond::Version(4),
                ..
            }
        ));
        // The old alias goes, the new one is claimed.
        assert_eq!(plan.ops.len(), 3);
        let same_alias = save(&sample("ci-job", "applink:ci"), None, Some(&old)).unwrap();
        assert_eq!(same_alias.ops.len(), 1);
        let new = save(&sample("new", "applink:new"), None, None).unwrap();
        assert_eq!(new.outcome.version, 1);
        assert_eq!(remove(&new.outcome).ops.len(), 2);
    }
}
