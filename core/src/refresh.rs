//! Refresh-token rotation, as a rule: what a presented refresh token is, judged from its
//! record, the client that presents it, `now`, the grace period, and whether its successor
//! has been used. `identity-shared` loads those and carries out what the judgement calls for.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ClientId, GrantId};
use crate::scope::Scopes;

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
