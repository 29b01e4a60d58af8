//! Identity providers for enterprise SAML SSO: registered by an operator
//! (`identity admin idp add`), picked at the login page by the email's domain.

use async_trait::async_trait;
pub use identity_core::idp::{DEFAULT_MFA_CONTEXTS, Idp, IdpError, valid_id};

use identity_core::idp::{
    self as rules, IdpPointer, SSO_URLS_PK, SsoUrl, domain_pk, entity_pk, idp_pk,
};

use crate::accounts::{AccountError, Accounts};
use crate::store::{Store, StoreError, Table};

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
        let plan = rules::register(idp, uuid::Uuid::new_v4().to_string())?;
        if let Err(why) = crate::config::https_or_loopback(&idp.sso_url) {
            return Err(IdpError::Invalid(format!(
                "the SSO URL {:?}: {why}",
                idp.sso_url
            )));
        }
        let idp = self
            .apply(plan)
            .await
            .map_err(crate::store::conflict_as(IdpError::Taken))?;
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
        for account in accounts {
            let Some(held) = account.sso_idp.as_deref() else {
                continue;
            };
            if idp.owns(account.email_domain())
                && held != idp.id
                && crate::accounts::release_from_idp(self, &account.id, held)
                    .await
                    .map_err(account_err)?
            {
                released += 1;
            }
        }
        if released > 0 {
            tracing::warn!(idp = %idp.id, released, "accounts of the IdP's domains released from the IdP that held them");
        }
        Ok(idp)
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
        let Some(idp) = self.idp(id).await? else {
            return Err(IdpError::Invalid(format!("no IdP {id}")));
        };
        Ok(self.apply(rules::set_certificates(&idp, certs)?).await?)
    }

    async fn remove_idp(&self, id: &str) -> Result<Option<(Idp, usize)>, IdpError> {
        let Some(idp) = self.idp(id).await? else {
            return Ok(None);
        };
        // The IdP goes first, so no new SSO login can start under it.
        self.apply(rules::remove(&idp)).await?;
        // Its accounts are released: what their IdP vouched for ends with it (sessions,
        // grants and the tokens of them, API keys), as a block would end it.
        let mut released = 0;
        for account in self.list_accounts().await.map_err(account_err)? {
            if account.sso_idp.as_deref() == Some(id)
                && crate::accounts::release_from_idp(self, &account.id, id)
                    .await
                    .map_err(account_err)?
            {
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
