//! Add-ons under the ownership model: an add-on belongs to an **app**, never to the person
//! who provisioned it. Who may open its dashboard (add-on SSO) and whom the partner sees
//! (the Platform API for partners) is read from the app's roles in the store at request
//! time, so a role change or a removal takes effect at once; nothing here caches it.
//!
//! Each add-on has a resource UUID (what the partner knows it by), a random `sso_salt` (the
//! secret both sides compute SSO tokens with; kept as is, since the tokens need it) and
//! partner credentials for the Platform API (a username and a 256-bit random password, of
//! which the store keeps only the SHA-256).
//!
//! Records, all in the `apps` table: `addon#{id}`/`addon` (the add-on),
//! `addonname#{name}`/`addonname`, `partner#{username}`/`partner` and
//! `resource#{resource_id}`/`resource` (pointers to the id), and `app#{app_id}`/`addon#{id}`
//! (the app's add-ons). One atomic write creates them all.

use async_trait::async_trait;
use identity_core::digest::{Digest, Sealed};
use serde::{Deserialize, Serialize};

use crate::accounts::Accounts;
use crate::apps::{App, Apps, Role};
use crate::crypto;
use crate::secret::SecretString;
use crate::store::{Item, Store, StoreError, Table, record};

/// An add-on. [`Addon::public_json`] leaves the salt and the password hash out; `Debug`
/// prints them as `[redacted]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addon {
    /// The platform's id of the add-on (`/addons/{id}/sso`).
    pub id: String,
    /// The resource UUID the partner knows the add-on by (the form's `resource_id`).
    pub resource_id: String,
    /// The app that owns the add-on.
    pub app_id: String,
    pub name: String,
    /// Where the SSO form is POSTed: https, or http on a loopback host.
    pub sso_url: String,
    sso_salt: Sealed,
    pub partner_username: String,
    /// Lowercase hex SHA-256 of the partner password.
    partner_password_sha256: Digest,
    pub created_at: i64,
}

/// A stand-in hash compared when the username is unknown, so every failed check costs the
/// same.
const NO_PASSWORD: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Addon {
    /// The secret the SSO tokens are computed with.
    pub fn sso_salt(&self) -> identity_addon_verify::Salt {
        identity_addon_verify::Salt::new(self.sso_salt.as_str())
    }

    /// Whether `presented` is the partner password. The password is 256 random bits, so a
    /// plain SHA-256 (no slow password hash) is enough; the hashes are compared in
    /// constant time.
    pub fn partner_password_matches(&self, presented: &SecretString) -> bool {
        let presented = crypto::sha256_hex(presented.expose_secret().as_bytes());
        crypto::constant_time_eq(
            presented.as_bytes(),
            self.partner_password_sha256.as_bytes(),
        )
    }

    /// `scheme://host[:port]` of the `sso_url`: what the SSO page's `form-action` allows.
    pub fn sso_origin(&self) -> Option<String> {
        check_sso_url(&self.sso_url).ok()
    }

    /// The platform path that signs a person in to the add-on.
    pub fn sso_path(&self) -> String {
        format!("/addons/{}/sso", self.id)
    }

    /// The operator-facing JSON: never the salt, never the password or its hash.
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "addon_id": self.id,
            "resource_id": self.resource_id,
            "app_id": self.app_id,
            "name": self.name,
            "sso_url": self.sso_url,
            "sso_path": self.sso_path(),
            "partner_username": self.partner_username,
            "created_at": crate::clock::rfc3339(self.created_at),
        })
    }
}

/// A new add-on with the secrets shown once: the salt (also kept, for the tokens) and the
/// partner password (kept only hashed).
#[derive(Debug)]
pub struct Provisioned {
    pub addon: Addon,
    pub partner_password: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    #[error(
        "add-on names are 3 to 60 lowercase letters, digits and dashes, starting with a letter"
    )]
    InvalidName,
    #[error("an add-on with this name already exists")]
    NameTaken,
    #[error("sso-url {0:?}: {1}")]
    InvalidSsoUrl(String, &'static str),
    #[error("no such app")]
    AppNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::apps::AppError> for AddonError {
    fn from(e: crate::apps::AppError) -> Self {
        match e {
            crate::apps::AppError::Store(s) => AddonError::Store(s),
            crate::apps::AppError::NotFound => AddonError::AppNotFound,
            other => AddonError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

impl From<crate::accounts::AccountError> for AddonError {
    fn from(e: crate::accounts::AccountError) -> Self {
        AddonError::Store(e.into_store_error())
    }
}

pub fn valid_addon_name(name: &str) -> bool {
    (3..=60).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn host_is_plain(host: &str) -> bool {
    let bracketed_v6 = host.starts_with('[')
        && host.ends_with(']')
        && host[1..host.len() - 1]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    bracketed_v6
        || (!host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
}

/// An add-on's `sso_url`: `https://…`, or `http://` on a loopback host (`localhost`,
/// `127.0.0.1`, `[::1]`: local development and the example partner); no fragment, no user
/// info, a plain host name. Returns its origin (`scheme://host[:port]`), which goes into
/// the SSO page's `Content-Security-Policy`, so it must be a plain source expression.
pub fn check_sso_url(url: &str) -> Result<String, &'static str> {
    if url.len() > 2000 {
        return Err("longer than 2000 characters");
    }
    if url.contains('#') {
        return Err("an SSO URL has no fragment");
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | ';' | ','))
    {
        return Err("contains whitespace, quotes, ';' or ','");
    }
    let parsed = crate::config::https_or_loopback(url)?;
    let authority = parsed.authority().ok_or("not an absolute URL")?;
    let host = authority.host().to_ascii_lowercase();
    if !host_is_plain(&host) {
        return Err("the host is not a plain host name or address");
    }
    let scheme = parsed.scheme_str().unwrap_or("https");
    Ok(match authority.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

fn addon_pk(id: &str) -> String {
    format!("addon#{id}")
}
fn name_pk(name: &str) -> String {
    format!("addonname#{name}")
}
fn partner_pk(username: &str) -> String {
    format!("partner#{username}")
}
fn resource_pk(resource_id: &str) -> String {
    format!("resource#{resource_id}")
}
fn app_pk(app_id: &str) -> String {
    format!("app#{app_id}")
}

#[derive(Serialize, Deserialize)]
struct Pointer {
    addon_id: String,
}

/// Who may open an add-on's SSO, judged now from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoAccess {
    /// No such add-on (or its app is gone).
    NoSuchAddon,
    /// The person holds no role on the add-on's app.
    NoRole {
        addon: Addon,
        app: App,
    },
    Granted {
        addon: Addon,
        app: App,
        role: Role,
    },
}

/// One person with access to an app, as the Platform API for partners shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collaborator {
    pub role: Role,
    pub account_id: String,
    pub email: String,
    /// Signs in through SSO: the account is under an IdP.
    pub federated: bool,
}

/// What a partner may see of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerApp {
    NoSuchApp,
    /// The app exists but has none of this partner's add-ons.
    NotAttached,
    Collaborators {
        app: App,
        people: Vec<Collaborator>,
    },
}

#[async_trait]
pub trait Addons {
    /// Provisions an add-on for the app: a new resource UUID, a random salt and partner
    /// credentials. The add-on belongs to the app; nobody's account is recorded on it.
    async fn create_addon(
        &self,
        app: &App,
        name: &str,
        sso_url: &str,
    ) -> Result<Provisioned, AddonError>;
    async fn addon(&self, id: &str) -> Result<Option<Addon>, AddonError>;
    async fn addon_by_name(&self, name: &str) -> Result<Option<Addon>, AddonError>;
    /// The add-on a partner knows by this resource UUID.
    async fn addon_by_resource(&self, resource_id: &str) -> Result<Option<Addon>, AddonError>;
    /// The app's add-ons, by name.
    async fn addons_of(&self, app_id: &str) -> Result<Vec<Addon>, AddonError>;
    /// Every add-on (operator listings only: a scan).
    async fn list_addons(&self) -> Result<Vec<Addon>, AddonError>;
    /// The add-on whose partner credentials these are, or `None` (unknown username or wrong
    /// password: the same answer, in the same time).
    async fn partner_addon(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Option<Addon>, AddonError>;
    /// Whether the account may open the add-on's SSO: a role on its app, read now.
    async fn sso_access(&self, addon_id: &str, account_id: &str) -> Result<SsoAccess, AddonError>;
    /// The app's owner, team members and collaborators, if the partner's add-on is attached
    /// to it. `app_ref` is the app's id or name.
    async fn partner_app(&self, partner: &Addon, app_ref: &str) -> Result<PartnerApp, AddonError>;
}

async fn addon_by_pointer(store: &Store, pk: &str, sk: &str) -> Result<Option<Addon>, AddonError> {
    match store.get::<Pointer>(Table::Apps, pk, sk).await? {
        Some(p) => store.addon(&p.addon_id).await,
        None => Ok(None),
    }
}

#[async_trait]
impl Addons for Store {
    async fn create_addon(
        &self,
        app: &App,
        name: &str,
        sso_url: &str,
    ) -> Result<Provisioned, AddonError> {
        if !valid_addon_name(name) {
            return Err(AddonError::InvalidName);
        }
        check_sso_url(sso_url).map_err(|e| AddonError::InvalidSsoUrl(sso_url.to_string(), e))?;
        let id = uuid::Uuid::new_v4().to_string();
        let partner_password = crypto::random_token();
        let addon = Addon {
            id: id.clone(),
            resource_id: uuid::Uuid::new_v4().to_string(),
            app_id: app.id.clone(),
            name: name.to_string(),
            sso_url: sso_url.to_string(),
            sso_salt: hex::encode(crypto::random_bytes(32)).into(),
            partner_username: format!("addon-{}", uuid::Uuid::new_v4().simple()),
            partner_password_sha256: crypto::sha256_hex(
                partner_password.expose_secret().as_bytes(),
            )
            .into(),
            created_at: self.now(),
        };
        let pointer = Pointer {
            addon_id: id.clone(),
        };
        let put = |item: Item| record::create(Table::Apps, item);
        let ops = vec![
            record::require_live(Table::Apps, app_pk(&app.id), "app".into()),
            put(Item::new(addon_pk(&id), "addon", &addon)?),
            put(Item::new(name_pk(name), "addonname", &pointer)?),
            put(Item::new(
                partner_pk(&addon.partner_username),
                "partner",
                &pointer,
            )?),
            put(Item::new(
                resource_pk(&addon.resource_id),
                "resource",
                &pointer,
            )?),
            put(Item::new(app_pk(&app.id), addon_pk(&id), &pointer)?),
        ];
        match self.write(ops).await {
            Ok(()) => Ok(Provisioned {
                addon,
                partner_password,
            }),
            Err(StoreError::Conflict) => {
                if self.app(&app.id).await?.is_none() {
                    Err(AddonError::AppNotFound)
                } else {
                    // Ids are fresh UUIDs: the name is what was taken.
                    Err(AddonError::NameTaken)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn addon(&self, id: &str) -> Result<Option<Addon>, AddonError> {
        Ok(self.get(Table::Apps, &addon_pk(id), "addon").await?)
    }

    async fn addon_by_name(&self, name: &str) -> Result<Option<Addon>, AddonError> {
        addon_by_pointer(self, &name_pk(name), "addonname").await
    }

    async fn addon_by_resource(&self, resource_id: &str) -> Result<Option<Addon>, AddonError> {
        addon_by_pointer(self, &resource_pk(resource_id), "resource").await
    }

    async fn addons_of(&self, app_id: &str) -> Result<Vec<Addon>, AddonError> {
        let refs: Vec<Pointer> = self.query(Table::Apps, &app_pk(app_id), "addon#").await?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            if let Some(a) = self.addon(&r.addon_id).await? {
                out.push(a);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn list_addons(&self) -> Result<Vec<Addon>, AddonError> {
        let items = self.backend().scan(Table::Apps, self.now()).await?;
        let mut out = items
            .iter()
            .filter(|i| i.pk.starts_with("addon#") && i.sk == "addon")
            .map(|i| i.parse::<Addon>())
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn partner_addon(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Option<Addon>, AddonError> {
        let found = if username.is_empty() || username.len() > 100 {
            None
        } else {
            addon_by_pointer(self, &partner_pk(username), "partner").await?
        };
        match found {
            Some(addon) if addon.partner_username == username => {
                Ok(addon.partner_password_matches(password).then_some(addon))
            }
            _ => {
                // Burn the same time as a real comparison.
                let h = crypto::sha256_hex(password.expose_secret().as_bytes());
                let _ = crypto::constant_time_eq(h.as_bytes(), NO_PASSWORD.as_bytes());
                Ok(None)
            }
        }
    }

    async fn sso_access(&self, addon_id: &str, account_id: &str) -> Result<SsoAccess, AddonError> {
        let Some(addon) = self.addon(addon_id).await? else {
            return Ok(SsoAccess::NoSuchAddon);
        };
        let Some(app) = self.app(&addon.app_id).await? else {
            return Ok(SsoAccess::NoSuchAddon);
        };
        Ok(match self.role_of(&app.id, account_id).await? {
            Some(role) => SsoAccess::Granted { addon, app, role },
            None => SsoAccess::NoRole { addon, app },
        })
    }

    async fn partner_app(&self, partner: &Addon, app_ref: &str) -> Result<PartnerApp, AddonError> {
        let app = match self.app(app_ref).await? {
            Some(app) => Some(app),
            None => self.app_by_name(app_ref).await?,
        };
        let Some(app) = app else {
            return Ok(PartnerApp::NoSuchApp);
        };
        // The partner's add-on must be attached to the app now (read, not assumed).
        let attached = partner.app_id == app.id
            && self
                .get_item(Table::Apps, &app_pk(&app.id), &addon_pk(&partner.id))
                .await?
                .is_some();
        if !attached {
            return Ok(PartnerApp::NotAttached);
        }
        let mut people = Vec::new();
        for m in self.members(&app).await? {
            // A membership whose account is gone gives nobody access.
            if let Some(account) = self.account(&m.account_id).await? {
                people.push(Collaborator {
                    role: m.role,
                    account_id: account.id.to_string(),
                    email: account.email.clone(),
                    federated: account.sso_idp.is_some(),
                });
            }
        }
        Ok(PartnerApp::Collaborators { app, people })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sso_urls_are_https_or_loopback_http() {
        assert_eq!(
            check_sso_url("https://partner.example.com/heroku/sso").unwrap(),
            "https://partner.example.com"
        );
        assert_eq!(
            check_sso_url("https://Partner.example.com:8443/sso?x=1").unwrap(),
            "https://partner.example.com:8443"
        );
        assert_eq!(
            check_sso_url("http://127.0.0.1:3000/example-partner/sso").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            check_sso_url("http://localhost/sso").unwrap(),
            "http://localhost"
        );
        assert_eq!(
            check_sso_url("http://[::1]:8080/sso").unwrap(),
            "http://[::1]:8080"
        );
        for bad in [
            "http://partner.example.com/sso",
            "ftp://partner.example.com/sso",
            "/relative/sso",
            "https://user:pw@partner.example.com/sso",
            "https://partner.example.com/sso#frag",
            "https://partner.example.com/s so",
            "https://partner.example.com/sso;'unsafe-inline'",
            "javascript:alert(1)",
            "",
        ] {
            assert!(check_sso_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addon_names_follow_the_rule() {
        assert!(valid_addon_name("redis-cache-1"));
        for bad in ["ab", "1redis", "Redis", "redis_cache", &"a".repeat(61)] {
            assert!(!valid_addon_name(bad), "{bad}");
        }
    }
}
