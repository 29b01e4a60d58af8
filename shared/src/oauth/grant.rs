//! Grants: an account's authorization of one client, what Heroku called an authorization.
//! Every token issued to a client for an account belongs to the account's one live grant
//! for that client (its `gid` is in the access token and the refresh-token record), so
//! revoking the grant kills them all at once. The grant also remembers the scopes the
//! account consented to: asking again for the same scopes, or fewer, skips the consent page.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::REVOKED_GRANT_KEPT_SECS;
use super::scope::Scopes;
use crate::crypto;
use crate::store::{Cond, Item, Op, Store, StoreError, Table};
pub use identity_core::grant::Grant;
use identity_core::ids::GrantId;

fn grant_pk(gid: &str) -> String {
    format!("grant#{gid}")
}

fn index_pk(account_id: &str) -> String {
    format!("account#{account_id}")
}

fn index_sk(client_id: &str) -> String {
    format!("grant#{client_id}")
}

#[derive(Serialize, Deserialize)]
struct GrantPointer {
    gid: GrantId,
}

/// How often a write that lost a race is retried against fresh data.
const RETRIES: usize = 5;

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
        for _ in 0..RETRIES {
            let now = self.now();
            let pointer = self
                .get_item(Table::OAuth, &index_pk(account_id), &index_sk(client_id))
                .await?;
            let Some(pointer) = pointer else {
                let grant = Grant {
                    gid: crypto::b64url(&crypto::random_bytes(16)).into(),
                    client_id: client_id.into(),
                    account_id: account_id.into(),
                    scope: scopes.to_string(),
                    created_at: now,
                    updated_at: now,
                    revoked_at: None,
                    version: 1,
                };
                let ops = vec![
                    Op::Put {
                        table: Table::OAuth,
                        item: Item::new(
                            index_pk(account_id),
                            index_sk(client_id),
                            &GrantPointer {
                                gid: grant.gid.clone(),
                            },
                        )?,
                        cond: Cond::Absent,
                    },
                    Op::Put {
                        table: Table::OAuth,
                        item: Item::new(grant_pk(&grant.gid), "grant", &grant)?,
                        cond: Cond::Absent,
                    },
                ];
                match self.write(ops).await {
                    Ok(()) => return Ok(grant),
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e),
                }
            };
            let gid = pointer.parse::<GrantPointer>()?.gid;
            match read_grant(self, &gid).await? {
                Some(g) if g.is_live() => {
                    let have = g.scopes();
                    if have.contains_all(scopes) {
                        return Ok(g);
                    }
                    let mut wider = g.clone();
                    wider.scope = have.union(scopes).to_string();
                    wider.updated_at = now;
                    wider.version = g.version + 1;
                    let item =
                        Item::new(grant_pk(&gid), "grant", &wider)?.with_version(wider.version);
                    match self
                        .write(vec![Op::Put {
                            table: Table::OAuth,
                            item,
                            cond: Cond::Version(g.version),
                        }])
                        .await
                    {
                        Ok(()) => return Ok(wider),
                        Err(StoreError::Conflict) => continue,
                        Err(e) => return Err(e),
                    }
                }
                // A pointer to a dead grant (revocation removes both together, so only an
                // interrupted older write leaves one): drop it and start afresh.
                _ => match self
                    .write(vec![Op::Delete {
                        table: Table::OAuth,
                        pk: index_pk(account_id),
                        sk: index_sk(client_id),
                        cond: Cond::Version(pointer.version),
                    }])
                    .await
                {
                    Ok(()) | Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e),
                },
            }
        }
        Err(StoreError::Conflict)
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
        for _ in 0..RETRIES {
            let Some(g) = read_grant(self, gid).await? else {
                return Ok(None);
            };
            if !g.is_live() {
                return Ok(Some(g));
            }
            let now = self.now();
            let mut revoked = g.clone();
            revoked.revoked_at = Some(now);
            revoked.updated_at = now;
            revoked.version = g.version + 1;
            let item = Item::new(grant_pk(gid), "grant", &revoked)?
                .with_version(revoked.version)
                .expiring(now + REVOKED_GRANT_KEPT_SECS);
            // The pointer goes with it, so the next authorization makes a new grant (and
            // asks for consent again). It points at this grant: grants are made only
            // where no pointer lives, and this grant is still live.
            let ops = vec![
                Op::Put {
                    table: Table::OAuth,
                    item,
                    cond: Cond::Version(g.version),
                },
                Op::Delete {
                    table: Table::OAuth,
                    pk: index_pk(&g.account_id),
                    sk: index_sk(&g.client_id),
                    cond: Cond::Always,
                },
            ];
            match self.write(ops).await {
                Ok(()) => return Ok(Some(revoked)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}
