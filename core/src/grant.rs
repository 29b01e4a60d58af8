//! Grants: an account's authorization of one client. Every token issued to the client for
//! the account carries the grant's id; revoking the grant kills them all.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ClientId, GrantId};
use crate::plan::Plan;
use crate::scope::Scopes;
use crate::store::{Cond, Item, Op, StoreError, Table};

/// How long a revoked grant's record is kept (for the account's and operators' views).
pub const REVOKED_GRANT_KEPT_SECS: i64 = 7 * 24 * 60 * 60;

/// The grant's record: `grant#{gid}` / `grant` in [`Table::OAuth`].
pub fn grant_pk(gid: &str) -> String {
    format!("grant#{gid}")
}

/// The account's pointer to its live grant for a client: `account#{id}` / `grant#{client}`.
pub fn index_pk(account_id: &str) -> String {
    format!("account#{account_id}")
}

pub fn index_sk(client_id: &str) -> String {
    format!("grant#{client_id}")
}

/// The body of an account's pointer to its live grant for a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantPointer {
    pub gid: GrantId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub gid: GrantId,
    pub client_id: ClientId,
    pub account_id: AccountId,
    /// The scopes consented to (or given to a trusted client), space-separated.
    pub scope: String,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// Store version, for conditional updates; not part of the record body.
    #[serde(skip)]
    pub version: i64,
}

impl Grant {
    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// The rule before issuing on a grant (code exchange, device code, refresh): it is live
    /// and it is this client's.
    pub fn serves(&self, client_id: &str) -> bool {
        self.is_live() && self.client_id == client_id
    }

    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }

    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "grant_id": self.gid,
            "client_id": self.client_id,
            "account_id": self.account_id,
            "scopes": self.scopes().names(),
            "created_at": crate::clock::rfc3339(self.created_at),
            "updated_at": crate::clock::rfc3339(self.updated_at),
            "revoked": !self.is_live(),
        })
    }
}

crate::versioned!(Grant);

/// The writes that make `grant` (new, version 1) and the account's pointer to it, both
/// refused if either already lives.
pub fn create(grant: &Grant) -> Result<Vec<Op>, StoreError> {
    Ok(vec![
        Op::Put {
            table: Table::OAuth,
            item: Item::new(
                index_pk(&grant.account_id),
                index_sk(&grant.client_id),
                &GrantPointer {
                    gid: grant.gid.clone(),
                },
            )?,
            cond: Cond::Absent,
        },
        Op::Put {
            table: Table::OAuth,
            item: Item::new(grant_pk(&grant.gid), "grant", grant)?,
            cond: Cond::Absent,
        },
    ])
}

/// What is loaded before an authorization uses the account's grant for a client.
#[derive(Debug, Clone)]
pub struct Held {
    /// The version of the account's pointer to its grant for the client, if one lives.
    pub pointer: Option<i64>,
    /// The grant it points at (live or revoked), if its record still exists.
    pub current: Option<Grant>,
}

/// The grant an authorization asks for.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub account_id: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a Scopes,
    /// The id a new grant gets (random, made by the caller).
    pub fresh_gid: &'a str,
}

/// The rule for an authorization: the account's live grant for the client serves it,
/// widened to the scopes asked for; without one (no pointer, or a pointer to a grant no
/// longer live) a new grant is made, consent starting afresh.
pub fn widen_or_make(held: Held, wanted: Wanted<'_>, now: i64) -> Result<Plan<Grant>, StoreError> {
    match held
        .current
        .filter(|g| held.pointer.is_some() && g.is_live())
    {
        Some(g) if g.scopes().contains_all(wanted.scopes) => Ok(Plan::answer(g)),
        Some(g) => {
            let mut wider = g.clone();
            wider.scope = g.scopes().union(wanted.scopes).to_string();
            wider.updated_at = now;
            wider.version = g.version + 1;
            Ok(Plan::write(vec![update(&g, &wider)?], wider))
        }
        None => {
            let grant = Grant {
                gid: wanted.fresh_gid.into(),
                client_id: wanted.client_id.into(),
                account_id: wanted.account_id.into(),
                scope: wanted.scopes.to_string(),
                created_at: now,
                updated_at: now,
                revoked_at: None,
                version: 1,
            };
            let mut ops = create(&grant)?;
            // A pointer to a dead grant (revocation removes both together, so only an
            // interrupted older write leaves one) is replaced, at the version read.
            if let (Some(version), Op::Put { cond, item, .. }) = (held.pointer, &mut ops[0]) {
                *cond = Cond::Version(version);
                item.version = version + 1;
            }
            Ok(Plan::write(ops, grant))
        }
    }
}

/// The writes that replace `grant` (as loaded, at its version) with `next`.
pub fn update(grant: &Grant, next: &Grant) -> Result<Op, StoreError> {
    let mut item = Item::new(grant_pk(&grant.gid), "grant", next)?.with_version(grant.version + 1);
    if let Some(at) = next.revoked_at {
        item = item.expiring(at + REVOKED_GRANT_KEPT_SECS);
    }
    Ok(Op::Put {
        table: Table::OAuth,
        item,
        cond: Cond::Version(grant.version),
    })
}

/// The rule for revoking a grant, as loaded: a live grant is marked revoked at `now`
/// (every token carrying its id dies with it) and the account's pointer goes with it, so
/// the next authorization makes a new grant and asks for consent again. A grant already
/// revoked needs no write. Returns the grant as it will be.
pub fn revoke(grant: &Grant, now: i64) -> Result<(Grant, Vec<Op>), StoreError> {
    if !grant.is_live() {
        return Ok((grant.clone(), Vec::new()));
    }
    let mut revoked = grant.clone();
    revoked.revoked_at = Some(now);
    revoked.updated_at = now;
    revoked.version = grant.version + 1;
    // The pointer points at this grant: grants are made only where no pointer lives, and
    // this grant is still live.
    let ops = vec![
        update(grant, &revoked)?,
        Op::Delete {
            table: Table::OAuth,
            pk: index_pk(&grant.account_id),
            sk: index_sk(&grant.client_id),
            cond: Cond::Always,
        },
    ];
    Ok((revoked, ops))
}

/// [`revoke`] for each grant, in one list of writes.
pub fn revoke_all(grants: &[Grant], now: i64) -> Result<Vec<Op>, StoreError> {
    let mut ops = Vec::new();
    for g in grants {
        ops.extend(revoke(g, now)?.1);
    }
    Ok(ops)
}

/// A live grant of account `a1` for client `c` (`read`), for the decisions' unit tests.
#[cfg(test)]
pub(crate) fn sample(gid: &str, version: i64) -> Grant {
    Grant {
        gid: gid.into(),
        client_id: "c".into(),
        account_id: "a1".into(),
        scope: "read".into(),
        created_at: 0,
        updated_at: 0,
        revoked_at: None,
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(version: i64) -> Grant {
        Grant {
            gid: "g".into(),
            client_id: "c".into(),
            account_id: "a".into(),
            scope: "read".into(),
            created_at: 1,
            updated_at: 1,
            revoked_at: None,
            version,
        }
    }

    #[test]
    fn revoking_a_live_grant_marks_it_at_its_version_and_drops_the_accounts_pointer() {
        let (revoked, ops) = revoke(&grant(3), 100).unwrap();
        assert_eq!(revoked.revoked_at, Some(100));
        assert!(!revoked.serves("c"));
        let [Op::Put { item, cond, .. }, Op::Delete { pk, sk, .. }] = ops.as_slice() else {
            panic!("{ops:?}");
        };
        assert_eq!(*cond, Cond::Version(3));
        assert_eq!(item.version, 4);
        assert_eq!(item.expires_at, Some(100 + REVOKED_GRANT_KEPT_SECS));
        assert_eq!((pk.as_str(), sk.as_str()), ("account#a", "grant#c"));
    }

    fn wanted<'a>(scopes: &'a Scopes) -> Wanted<'a> {
        Wanted {
            account_id: "a",
            client_id: "c",
            scopes,
            fresh_gid: "new",
        }
    }

    #[test]
    fn a_live_grant_with_the_scopes_serves_without_a_write() {
        let read = Scopes::parse("read").unwrap();
        let held = Held {
            pointer: Some(1),
            current: Some(grant(2)),
        };
        let plan = widen_or_make(held, wanted(&read), 9).unwrap();
        assert!(plan.ops.is_empty());
        assert_eq!(plan.outcome.gid.as_str(), "g");
    }

    #[test]
    fn a_live_grant_is_widened_at_its_version_to_the_scopes_asked_for() {
        let more = Scopes::parse("read write").unwrap();
        let held = Held {
            pointer: Some(1),
            current: Some(grant(2)),
        };
        let plan = widen_or_make(held, wanted(&more), 9).unwrap();
        assert_eq!(plan.outcome.scopes(), more);
        assert_eq!(plan.outcome.version, 3);
        assert!(matches!(
            plan.ops.as_slice(),
            [Op::Put {
                cond: Cond::Version(2),
                ..
            }]
        ));
    }

    #[test]
    fn no_live_grant_makes_a_new_one_replacing_a_pointer_to_a_dead_grant() {
        let read = Scopes::parse("read").unwrap();
        let fresh = widen_or_make(
            Held {
                pointer: None,
                current: None,
            },
            wanted(&read),
            9,
        )
        .unwrap();
        assert_eq!(fresh.outcome.gid.as_str(), "new");
        assert!(matches!(
            fresh.ops.as_slice(),
            [
                Op::Put {
                    cond: Cond::Absent,
                    ..
                },
                Op::Put {
                    cond: Cond::Absent,
                    ..
                }
            ]
        ));
        let (dead, _) = revoke(&grant(1), 5).unwrap();
        let replaced = widen_or_make(
            Held {
                pointer: Some(4),
                current: Some(dead),
            },
            wanted(&read),
            9,
        )
        .unwrap();
        assert_eq!(replaced.outcome.gid.as_str(), "new");
        assert!(matches!(
            replaced.ops.as_slice(),
            [
                Op::Put {
                    cond: Cond::Version(4),
                    ..
                },
                Op::Put {
                    cond: Cond::Absent,
                    ..
                }
            ]
        ));
    }

    #[test]
    fn revoking_a_revoked_grant_writes_nothing() {
        let (once, _) = revoke(&grant(1), 5).unwrap();
        let (twice, ops) = revoke(&once, 9).unwrap();
        assert!(ops.is_empty());
        assert_eq!(twice.revoked_at, Some(5));
    }
}
