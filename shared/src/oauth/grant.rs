//! Grants: an account's authorization of one client, what Heroku called an authorization.
//! Every token issued to a client for an account belongs to the account's one live grant
//! for that client (its `gid` is in the access token and the refresh-token record), so
//! revoking the grant kills them all at once. The grant also remembers the scopes the
//! account consented to: asking again for the same scopes, or fewer, skips the consent page.

use async_trait::async_trait;

use super::scope::Scopes;
use crate::crypto;
use crate::store::{Plan, Store, StoreError, Table};
use identity_core::grant;
pub use identity_core::grant::Grant;
use identity_core::grant::{GrantPointer, grant_pk, index_pk, index_sk};

#[async_trait]
pub trait Grants {
    /// The account's live grant for the client, with its scopes widened to include
    /// `scopes`; made when there is none.
    async fn grant_for(
        &self,
        account_id: &str,
        client_id: &str,
        scopes: &Scopes,
    ) -> Result<Grant, StoreError>;
    /// The account's pointer to its grant for the client and the grant it points at, as
    /// `identity_core::grant::widen_or_make` takes them (read only).
    async fn held_grant(
        &self,
        account_id: &str,
        client_id: &str,
    ) -> Result<grant::Held, StoreError>;
    /// The account's live grant for the client, if any (read only).
    async fn current_grant(
        &self,
        account_id: &str,
        client_id: &str,
    ) -> Result<Option<Grant>, StoreError>;
    /// A grant by id, live or revoked (until its record expires).
    async fn grant(&self, gid: &str) -> Result<Option<Grant>, StoreError>;
    /// The account's live grants.
    async fn grants_of(&self, account_id: &str) -> Result<Vec<Grant>, StoreError>;
    /// Revokes a grant: every token that carries its id dies. `None` if there is no such
    /// grant; revoking a revoked grant returns it unchanged.
    async fn revoke_grant(&self, gid: &str) -> Result<Option<Grant>, StoreError>;
    /// Revokes every live grant of the account (a password reset, a move to SSO).
    async fn revoke_grants_of(&self, account_id: &str) -> Result<(), StoreError> {
        for grant in self.grants_of(account_id).await? {
            self.revoke_grant(&grant.gid).await?;
        }
        Ok(())
    }
}

async fn read_grant(store: &Store, gid: &str) -> Result<Option<Grant>, StoreError> {
    if gid.is_empty() || gid.len() > 100 {
        return Ok(None);
    }
    store
        .get_versioned(Table::OAuth, &grant_pk(gid), "grant")
        .await
}

#[async_trait]
impl Grants for Store {
    async fn grant_for(
        &self,
        account_id: &str,
        client_id: &str,
        scopes: &Scopes,
    ) -> Result<Grant, StoreError> {
        let gid = crypto::b64url(&crypto::random_bytes(16));
        self.run(
            |_| self.held_grant(account_id, client_id),
            |held, now| {
                grant::widen_or_make(
                    held,
                    grant::Wanted {
                        account_id,
                        client_id,
                        scopes,
                        fresh_gid: &gid,
                    },
                    now,
                )
            },
        )
        .await
    }

    async fn held_grant(
        &self,
        account_id: &str,
        client_id: &str,
    ) -> Result<grant::Held, StoreError> {
        let pointer = self
            .get_item(Table::OAuth, &index_pk(account_id), &index_sk(client_id))
            .await?;
        let current = match &pointer {
            Some(p) => read_grant(self, &p.parse::<GrantPointer>()?.gid).await?,
            None => None,
        };
        Ok(grant::Held {
            pointer: pointer.map(|p| p.version),
            current,
        })
    }

    async fn current_grant(
        &self,
        account_id: &str,
        client_id: &str,
    ) -> Result<Option<Grant>, StoreError> {
        let Some(pointer) = self
            .get::<GrantPointer>(Table::OAuth, &index_pk(account_id), &index_sk(client_id))
            .await?
        else {
            return Ok(None);
        };
        Ok(read_grant(self, &pointer.gid)
            .await?
            .filter(|g| g.is_live() && g.account_id == account_id && g.client_id == client_id))
    }

    async fn grant(&self, gid: &str) -> Result<Option<Grant>, StoreError> {
        read_grant(self, gid).await
    }

    async fn grants_of(&self, account_id: &str) -> Result<Vec<Grant>, StoreError> {
        let pointers: Vec<GrantPointer> = self
            .query(Table::OAuth, &index_pk(account_id), "grant#")
            .await?;
        let mut out = Vec::with_capacity(pointers.len());
        for p in pointers {
            if let Some(g) = read_grant(self, &p.gid).await?
                && g.is_live()
                && g.account_id == account_id
            {
                out.push(g);
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.gid.cmp(&b.gid)));
        Ok(out)
    }

    async fn revoke_grant(&self, gid: &str) -> Result<Option<Grant>, StoreError> {
        self.run(
            |_| read_grant(self, gid),
            |loaded, now| match loaded {
                None => Ok(Plan::answer(None)),
                Some(g) => {
                    let (revoked, ops) = grant::revoke(&g, now)?;
                    Ok(Plan::write(ops, Some(revoked)))
                }
            },
        )
        .await
    }
}
