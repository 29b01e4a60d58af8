//! Refresh-token rotation, as a rule: what a presented refresh token is, judged from its
//! record, the client that presents it, `now`, the grace period, and whether its successor
//! has been used ([`judge`]); and the plan a use comes to ([`rotate`]): the token spent and
//! its successor stored in one write conditioned on the record's version, or its grant
//! revoked when a spent token comes back.

use serde::{Deserialize, Serialize};

use crate::grant::{self, Grant};
use crate::ids::{AccountId, ClientId, GrantId};
use crate::plan::Plan;
use crate::scope::Scopes;
use crate::store::{Cond, Item, Op, StoreError, Table};

/// How long a refresh token lives from its issue (also in the tests' records).
pub const REFRESH_TOKEN_TTL_SECS: i64 = 30 * 24 * 60 * 60;

/// A refresh token's record (under the token's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub gid: GrantId,
    pub client_id: ClientId,
    pub account_id: AccountId,
    /// The scopes the grant gave this token family, space-separated.
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// When the person approved the grant's login this token family comes from (the
    /// access tokens' `auth_time`); kept through rotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// When it was used (and replaced); a spent token is never honoured again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_at: Option<i64>,
    /// The hash of the token that replaced it (set with `spent_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    #[serde(skip)]
    pub version: i64,
}

impl RefreshRecord {
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }
}

/// What a presented refresh token is, judged from its record alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Rotate,
    /// Issued to another client.
    OtherClient,
    /// Spent less than the grace period ago, its successor unused: refused, nothing
    /// revoked.
    WithinGrace,
    /// Spent earlier: the grant must be revoked.
    Reuse,
}

/// The rule, given the record, the authenticated client, `now`, the grace period, and
/// whether the token's successor has been used (or can no longer be found: fail closed).
pub fn judge(
    record: &RefreshRecord,
    client_id: &str,
    now: i64,
    grace_secs: i64,
    successor_used: bool,
) -> Judgement {
    if record.client_id != client_id {
        return Judgement::OtherClient;
    }
    match record.spent_at {
        None => Judgement::Rotate,
        Some(spent) if now - spent < grace_secs && !successor_used => Judgement::WithinGrace,
        Some(_) => Judgement::Reuse,
    }
}

crate::versioned!(RefreshRecord);

/// A refresh token's record: `refresh#{sha256(token)}` / `refresh` in [`Table::OAuth`].
pub fn record_pk(token_hash: &str) -> String {
    format!("refresh#{token_hash}")
}

/// The record of a new refresh token (its hash given: the token is made by the caller) for
/// a grant, and the write that stores it; `auth_time` is when the person approved the
/// login it comes from (`None`: no person did).
pub fn issue(
    grant: &Grant,
    scope: &Scopes,
    now: i64,
    auth_time: Option<i64>,
    token_hash: &str,
) -> Result<(RefreshRecord, Op), StoreError> {
    let record = RefreshRecord {
        gid: grant.gid.clone(),
        client_id: grant.client_id.clone(),
        account_id: grant.account_id.clone(),
        scope: scope.to_string(),
        issued_at: now,
        expires_at: now + REFRESH_TOKEN_TTL_SECS,
        auth_time,
        spent_at: None,
        successor: None,
        version: 1,
    };
    let op = Op::Put {
        table: Table::OAuth,
        item: Item::new(record_pk(token_hash), "refresh", &record)?.expiring(record.expires_at),
        cond: Cond::Absent,
    };
    Ok((record, op))
}

/// What is loaded for a presented refresh token.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The token's record (unexpired), at the version read.
    pub record: Option<RefreshRecord>,
    /// For a spent token: its successor's record, if it can still be found.
    pub successor: Option<RefreshRecord>,
    /// The grant the record names, if its record exists.
    pub grant: Option<Grant>,
}

/// A presented refresh token: its hash, the authenticated client, the scopes asked for.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub token_hash: &'a str,
    pub client_id: &'a str,
    pub requested: Option<&'a Scopes>,
}

/// A rotation's successor token (its record) and the live grant it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Successor {
    pub record: RefreshRecord,
    pub grant: Grant,
}

/// What using a refresh token comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// Spent and replaced: the successor's record (its token is the caller's fresh one)
    /// and the live grant it serves.
    Rotated(Box<Successor>),
    /// Unknown, expired, issued to another client, or its grant is revoked.
    Invalid,
    /// Asked for a scope the token does not carry; nothing changes.
    ScopeTooWide,
    /// A retry within the grace period of the use that spent it; nothing changes.
    RetryWithinGrace,
    /// A spent token used again: its grant is revoked in the plan's write.
    Reused { gid: GrantId },
}

/// The rule for a use ([`judge`], then the scope and the grant), as a plan: a rotation
/// spends the token at the version read and stores its successor (`fresh_hash`) with the
/// same scopes and `auth_time`; a reuse revokes the grant; nothing else writes.
pub fn rotate(
    presented: Presented<'_>,
    loaded: Loaded,
    grace_secs: i64,
    fresh_hash: &str,
    now: i64,
) -> Result<Plan<Rotated>, StoreError> {
    let Some(record) = loaded.record else {
        return Ok(Plan::answer(Rotated::Invalid));
    };
    // A spent token whose successor cannot be found counts as one whose successor was
    // used (fail closed).
    let successor_used = record.spent_at.is_some()
        && (record.successor.is_none()
            || loaded
                .successor
                .as_ref()
                .is_none_or(|s| s.spent_at.is_some()));
    match judge(
        &record,
        presented.client_id,
        now,
        grace_secs,
        successor_used,
    ) {
        Judgement::OtherClient => return Ok(Plan::answer(Rotated::Invalid)),
        Judgement::WithinGrace => return Ok(Plan::answer(Rotated::RetryWithinGrace)),
        Judgement::Reuse => {
            let ops = match &loaded.grant {
                Some(g) if g.gid == record.gid => grant::revoke(g, now)?.1,
                _ => Vec::new(),
            };
            return Ok(Plan::write(ops, Rotated::Reused { gid: record.gid }));
        }
        Judgement::Rotate => {}
    }
    let scopes = record.scopes();
    if presented.requested.is_some_and(|r| !scopes.contains_all(r)) {
        return Ok(Plan::answer(Rotated::ScopeTooWide));
    }
    let grant = match loaded.grant {
        Some(g) if g.gid == record.gid && g.serves(presented.client_id) => g,
        _ => return Ok(Plan::answer(Rotated::Invalid)),
    };
    let (next, put_next) = issue(&grant, &scopes, now, record.auth_time, fresh_hash)?;
    let mut spent = record.clone();
    spent.spent_at = Some(now);
    spent.successor = Some(fresh_hash.to_string());
    spent.version = record.version + 1;
    let spend = Op::Put {
        table: Table::OAuth,
        item: Item::new(record_pk(presented.token_hash), "refresh", &spent)?
            .with_version(spent.version)
            .expiring(record.expires_at),
        cond: Cond::Version(record.version),
    };
    Ok(Plan::write(
        vec![spend, put_next],
        Rotated::Rotated(Box::new(Successor {
            record: next,
            grant,
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(spent_at: Option<i64>) -> RefreshRecord {
        RefreshRecord {
            gid: "g".into(),
            client_id: "c".into(),
            account_id: "a".into(),
            auth_time: None,
            scope: "identity".into(),
            issued_at: 0,
            expires_at: REFRESH_TOKEN_TTL_SECS,
            spent_at,
            successor: None,
            version: 1,
        }
    }

    fn live_grant() -> Grant {
        Grant {
            gid: "g".into(),
            client_id: "c".into(),
            account_id: "a".into(),
            scope: "identity".into(),
            created_at: 0,
            updated_at: 0,
            revoked_at: None,
            version: 2,
        }
    }

    fn presented(client_id: &str) -> Presented<'_> {
        Presented {
            token_hash: "old",
            client_id,
            requested: None,
        }
    }

    #[test]
    fn a_rotation_spends_the_token_at_its_version_and_stores_its_successor_in_one_write() {
        let mut r = record(None);
        r.auth_time = Some(7);
        let loaded = Loaded {
            record: Some(r),
            successor: None,
            grant: Some(live_grant()),
        };
        let plan = rotate(presented("c"), loaded, 10, "new", 100).unwrap();
        let Rotated::Rotated(next) = &plan.outcome else {
            panic!("{:?}", plan.outcome)
        };
        assert_eq!(
            next.record.auth_time,
            Some(7),
            "the approval's time is kept"
        );
        let [
            Op::Put {
                item: spent, cond, ..
            },
            Op::Put {
                item: fresh,
                cond: Cond::Absent,
                ..
            },
        ] = plan.ops.as_slice()
        else {
            panic!("{:?}", plan.ops)
        };
        assert_eq!(*cond, Cond::Version(1));
        assert_eq!(spent.pk, "refresh#old");
        assert_eq!(
            spent.parse::<RefreshRecord>().unwrap().successor.as_deref(),
            Some("new")
        );
        assert_eq!(fresh.pk, "refresh#new");
    }

    #[test]
    fn a_reused_refresh_token_revokes_its_grant_in_the_plan() {
        let loaded = Loaded {
            record: Some(record(Some(50))),
            successor: None,
            grant: Some(live_grant()),
        };
        let plan = rotate(presented("c"), loaded, 10, "new", 100).unwrap();
        assert_eq!(plan.outcome, Rotated::Reused { gid: "g".into() });
        assert!(matches!(
            plan.ops.as_slice(),
            [
                Op::Put {
                    cond: Cond::Version(2),
                    ..
                },
                Op::Delete { .. }
            ]
        ));
    }

    #[test]
    fn a_refresh_token_is_invalid_unless_its_grant_lives_and_serves_the_client() {
        for grant in [None, Some(grant::revoke(&live_grant(), 1).unwrap().0)] {
            let loaded = Loaded {
                record: Some(record(None)),
                successor: None,
                grant,
            };
            let plan = rotate(presented("c"), loaded, 10, "new", 100).unwrap();
            assert_eq!(plan, Plan::answer(Rotated::Invalid));
        }
        assert_eq!(
            rotate(presented("c"), Loaded::default(), 10, "new", 100).unwrap(),
            Plan::answer(Rotated::Invalid)
        );
    }

    #[test]
    fn a_refresh_asking_for_more_scope_than_its_token_changes_nothing() {
        let wider = Scopes::parse("identity write").unwrap();
        let loaded = Loaded {
            record: Some(record(None)),
            successor: None,
            grant: Some(live_grant()),
        };
        let p = Presented {
            requested: Some(&wider),
            ..presented("c")
        };
        assert_eq!(
            rotate(p, loaded, 10, "new", 100).unwrap(),
            Plan::answer(Rotated::ScopeTooWide)
        );
    }

    #[test]
    fn a_retry_within_grace_whose_successor_is_unused_changes_nothing() {
        let mut spent = record(Some(95));
        spent.successor = Some("next".into());
        let loaded = Loaded {
            record: Some(spent),
            successor: Some(record(None)),
            grant: Some(live_grant()),
        };
        assert_eq!(
            rotate(presented("c"), loaded, 10, "new", 100).unwrap(),
            Plan::answer(Rotated::RetryWithinGrace)
        );
    }

    #[test]
    fn unspent_token_rotates() {
        assert_eq!(judge(&record(None), "c", 100, 10, false), Judgement::Rotate);
    }

    #[test]
    fn reuse_within_grace_after_the_successor_was_used_revokes() {
        assert_eq!(
            judge(&record(Some(100)), "c", 101, 10, true),
            Judgement::Reuse,
            "the thief rotated first: the window is no hiding place"
        );
    }

    #[test]
    fn refresh_token_of_another_client_is_invalid_and_revokes_nothing() {
        assert_eq!(
            judge(&record(None), "other", 100, 10, false),
            Judgement::OtherClient
        );
        assert_eq!(
            judge(&record(Some(1)), "other", 100, 10, false),
            Judgement::OtherClient
        );
    }

    #[test]
    fn refresh_reuse_within_grace_is_refused_without_revoking() {
        assert_eq!(
            judge(&record(Some(100)), "c", 100, 10, false),
            Judgement::WithinGrace
        );
        assert_eq!(
            judge(&record(Some(100)), "c", 109, 10, false),
            Judgement::WithinGrace
        );
    }

    #[test]
    fn refresh_reuse_after_grace_revokes_the_grant() {
        assert_eq!(
            judge(&record(Some(100)), "c", 110, 10, false),
            Judgement::Reuse
        );
        assert_eq!(
            judge(&record(Some(100)), "c", 100, 0, false),
            Judgement::Reuse,
            "no grace: any reuse revokes"
        );
    }
}
