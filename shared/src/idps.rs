//! Identity providers for enterprise SAML SSO: registered by an operator
//! (`identity admin idp add`), picked at the login page by the email's domain.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use identity_core::idp::{DEFAULT_MFA_CONTEXTS, Idp};

use crate::accounts::{AccountError, Accounts};
use crate::store::{Cond, Item, Op, Store, StoreError, Table};

#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("an IdP with this id, entity ID or email domain is already registered")]
    Taken,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An IdP id: what `/sso/login?idp=` carries.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn idp_pk(id: &str) -> String {
    format!("idp#{id}")
}
fn domain_pk(domain: &str) -> String {
    format!("idp-domain#{domain}")
}
fn entity_pk(entity_id: &str) -> String {
    // Entity IDs are URLs or URNs of any length; the key holds their hash.
    format!(
        "idp-entity#{}",
        crate::crypto::sha256_hex(entity_id.as_bytes())
    )
}

#[derive(Serialize, Deserialize)]
struct IdpPointer {
    idp: String,
}

/// One partition listing every IdP's SSO URL, so the sign-in page can name them in its
/// `form-action` with one query (never a table scan, which is for operator listings).
const SSO_URLS_PK: &str = "idp-sso-urls";

#[derive(Serialize, Deserialize)]
struct SsoUrl {
    sso_url: String,
}

fn sso_url_op(idp: &Idp) -> Result<Op, StoreError> {
    Ok(Op::Put {
        table: Table::Accounts,
        item: Item::new(
            SSO_URLS_PK,
            format!("sso#{}", idp.id),
            &SsoUrl {
                sso_url: idp.sso_url.clone(),
            },
        )?,
        cond: Cond::Always,
    })
}

#[async_trait]
pub trait Idps {
    /// Registers an IdP under a new generation; refuses a taken id, entity ID or domain.
    /// The IdP as stored. Accounts of its domains that another IdP held (an any-domain one)
    /// are released, their grants revoked and their sessions and API keys ended.
    async fn add_idp(&self, idp: &Idp) -> Result<Idp, IdpError>;
    async fn idp(&self, id: &str) -> Result<Option<Idp>, StoreError>;
    /// The IdP that signs in people of this (lowercase) email domain.
    async fn idp_for_domain(&self, domain: &str) -> Result<Option<Idp>, StoreError>;
    /// The IdP whose entity ID is this (a response's Issuer).
    async fn idp_by_entity_id(&self, entity_id: &str) -> Result<Option<Idp>, StoreError>;
    async fn list_idps(&self) -> Result<Vec<Idp>, StoreError>;
    /// Every registered IdP's SSO URL (one query; for the sign-in page's policy).
    async fn idp_sso_urls(&self) -> Result<Vec<String>, StoreError>;
    /// Replaces an IdP's certificates (key rollover, or the dev IdP's key on start).
    async fn set_idp_certificates(&self, id: &str, certs: Vec<String>) -> Result<Idp, IdpError>;
    /// Removes an IdP and takes its accounts out of SSO, ending their sessions, grants and
    /// API keys. `None` if there was none.
    async fn remove_idp(&self, id: &str) -> Result<Option<(Idp, usize)>, IdpError>;
}

async fn pointed(store: &Store, pk: &str, sk: &str) -> Result<Option<Idp>, StoreError> {
    match store.get::<IdpPointer>(Table::Accounts, pk, sk).await? {
        Some(p) => store.idp(&p.idp).await,
        None => Ok(None),
    }
}

#[async_trait]
impl Idps for Store {
    async fn add_idp(&self, idp: &Idp) -> Result<Idp, IdpError> {
        let idp = &Idp {
            generation: uuid::Uuid::new_v4().to_string(),
            version: 1,
            ..idp.clone()
        };
        if !valid_id(&idp.id) {
            return Err(IdpError::Invalid(
                "IdP ids are 1-64 characters of a-z, 0-9, - and _".into(),
            ));
        }
        if idp.certificates.is_empty() {
            return Err(IdpError::Invalid(
                "an IdP needs at least one signing certificate".into(),
            ));
        }
        if let Err(why) = crate::config::https_or_loopback(&idp.sso_url) {
            return Err(IdpError::Invalid(format!(
                "the SSO URL {:?}: {why}",
                idp.sso_url
            )));
        }
        let pointer = || IdpPointer {
            idp: idp.id.clone(),
        };
        let mut ops = vec![
            Op::Put {
                table: Table::Accounts,
                item: Item::new(idp_pk(&idp.id), "idp", idp)?.with_version(1),
                cond: Cond::Absent,
            },
            Op::Put {
                table: Table::Accounts,
                item: Item::new(entity_pk(&idp.entity_id), "idp-entity", &pointer())?,
                cond: Cond::Absent,
            },
            sso_url_op(idp)?,
        ];
        for d in &idp.domains {
            ops.push(Op::Put {
                table: Table::Accounts,
                item: Item::new(domain_pk(d), "idp-domain", &pointer())?,
                cond: Cond::Absent,
            });
        }
        match self.write(ops).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(IdpError::Taken),
            Err(e) => return Err(e.into()),
        }
        // Its domains are its own now: accounts of them that another IdP holds (one
        // registered with --insecure-any-domain, which made them while no IdP owned the
        // domain) are released, with what that IdP vouched for. Their owners come under
        // this IdP by its own rules (a password, or the emailed link).
        let mut released = 0;
        let accounts = if idp.domains.is_empty() {
            Vec::new()
        } else {
            self.list_accounts().await.map_err(account_err)?
        };
        for mut account in accounts {
            if idp.owns(account.email_domain())
                && account
                    .sso_idp
                    .as_deref()
                    .is_some_and(|held| held != idp.id)
            {
                use crate::oauth::Grants;
                self.revoke_grants_of(&account.id).await?;
                account.release_from_sso();
                self.update_account(&account).await.map_err(account_err)?;
                released += 1;
            }
        }
        if released > 0 {
            tracing::warn!(idp = %idp.id, released, "accounts of the IdP's domains released from the IdP that held them");
        }
        Ok(idp.clone())
    }

    async fn idp(&self, id: &str) -> Result<Option<Idp>, StoreError> {
        if !valid_id(id) {
            return Ok(None);
        }
        self.get_versioned(Table::Accounts, &idp_pk(id), "idp")
            .await
    }

    async fn idp_for_domain(&self, domain: &str) -> Result<Option<Idp>, StoreError> {
        pointed(self, &domain_pk(&domain.to_ascii_lowercase()), "idp-domain").await
    }

    async fn idp_by_entity_id(&self, entity_id: &str) -> Result<Option<Idp>, StoreError> {
        match pointed(self, &entity_pk(entity_id), "idp-entity").await? {
            // The pointer is keyed by a hash: check the real value too.
            Some(idp) if idp.entity_id == entity_id => Ok(Some(idp)),
            _ => Ok(None),
        }
    }

    async fn list_idps(&self) -> Result<Vec<Idp>, StoreError> {
        let items = self.backend().scan(Table::Accounts, self.now()).await?;
        let mut out = items
            .iter()
            .filter(|i| i.sk == "idp")
            .map(|i| i.parse_versioned())
            .collect::<Result<Vec<Idp>, _>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn idp_sso_urls(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query::<SsoUrl>(Table::Accounts, SSO_URLS_PK, "sso#")
            .await?
            .into_iter()
            .map(|u| u.sso_url)
            .collect())
    }

    async fn set_idp_certificates(&self, id: &str, certs: Vec<String>) -> Result<Idp, IdpError> {
        if certs.is_empty() {
            return Err(IdpError::Invalid(
                "an IdP needs at least one signing certificate".into(),
            ));
        }
        let Some(idp) = self.idp(id).await? else {
            return Err(IdpError::Invalid(format!("no IdP {id}")));
        };
        let mut next = idp.clone();
        next.certificates = certs;
        next.version = idp.version + 1;
        let item = Item::new(idp_pk(id), "idp", &next)?.with_version(next.version);
        // The SSO URL entry is written again too (IdPs registered before it existed).
        self.write(vec![
            Op::Put {
                table: Table::Accounts,
                item,
                cond: Cond::Version(idp.version),
            },
            sso_url_op(&next)?,
        ])
        .await?;
        Ok(next)
    }

    async fn remove_idp(&self, id: &str) -> Result<Option<(Idp, usize)>, IdpError> {
        let Some(idp) = self.idp(id).await? else {
            return Ok(None);
        };
        // The IdP goes first, so no new SSO login can start under it.
        let mut ops = vec![
            Op::Delete {
                table: Table::Accounts,
                pk: idp_pk(id),
                sk: "idp".into(),
                cond: Cond::Version(idp.version),
            },
            Op::Delete {
                table: Table::Accounts,
                pk: entity_pk(&idp.entity_id),
                sk: "idp-entity".into(),
                cond: Cond::Always,
            },
            Op::Delete {
                table: Table::Accounts,
                pk: SSO_URLS_PK.into(),
                sk: format!("sso#{id}"),
                cond: Cond::Always,
            },
        ];
        for d in &idp.domains {
            ops.push(Op::Delete {
                table: Table::Accounts,
                pk: domain_pk(d),
                sk: "idp-domain".into(),
                cond: Cond::Always,
            });
        }
        self.write(ops).await?;
        // Its accounts are released: what their IdP vouched for ends with it (sessions,
        // grants and the tokens of them, API keys), as a block would end it.
        let mut released = 0;
        for mut account in self.list_accounts().await.map_err(account_err)? {
            if account.sso_idp.as_deref() == Some(id) {
                use crate::oauth::Grants;
                self.revoke_grants_of(&account.id).await?;
                account.release_from_sso();
                self.update_account(&account).await.map_err(account_err)?;
                released += 1;
            }
        }
        Ok(Some((idp, released)))
    }
}

fn account_err(e: AccountError) -> IdpError {
    match e {
        AccountError::Store(s) => IdpError::Store(s),
        other => IdpError::Invalid(other.to_string()),
    }
}
