//! The login history of the JWT bearer grant: every attempt, good or bad, with its time,
//! client, subject, outcome, reason and source IP. What an operator reads with
//! `identity admin login-history`.
//!
//! An attempt whose signature verified with a registered client's certificate is kept for
//! [`RETENTION_SECS`] and written once per view it appears in, in one atomic write: all
//! attempts, the client's attempts and the user's attempts (when `sub` is an email). Only
//! the client's key holder can add to those client and user views. Every other attempt
//! (unknown client, bad signature, malformed request: what anyone on the internet can
//! send) is a sample in the all-attempts view only, kept [`UNVERIFIED_RETENTION_SECS`].
//!
//! Views are partitioned by UTC day; the all-attempts view is also spread over
//! [`ALL_SHARDS`] partitions, so a flood of unauthenticated attempts has no single
//! partition to make hot. A listing reads bounded pages, newest days first, merges the
//! shards by time and stops when it has enough.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::accounts::Email;
use crate::store::{Item, Store, StoreError, Table, record};

/// How long verified attempts are kept: 90 days.
pub const RETENTION_SECS: i64 = 90 * 86_400;
/// How long unverified attempts are kept: 7 days.
pub const UNVERIFIED_RETENTION_SECS: i64 = 7 * 86_400;
/// Partitions of the all-attempts view, per day.
pub const ALL_SHARDS: u32 = 8;
const DAY: i64 = 86_400;
/// Free-text fields taken from requests are cut to this many characters.
const MAX_FIELD: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One attempt. `client_id` and `subject` are as the assertion claimed them (the reason
/// says whether the signature verified); `client_known` tells whether `client_id` named a
/// registered client. Never holds the assertion or a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAttempt {
    pub at: i64,
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_known: bool,
    /// The assertion's signature verified with one of the client's certificates.
    #[serde(default)]
    pub verified: bool,
    pub subject: Option<String>,
    pub account_id: Option<String>,
    pub outcome: Outcome,
    /// The OAuth error code of a failure.
    pub error: Option<String>,
    pub reason: String,
    pub source_ip: Option<String>,
    /// `token_endpoint` or `admin` (`identity admin authorization add`).
    pub via: String,
    /// The granted scope of a success.
    pub scope: Option<String>,
}

impl LoginAttempt {
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "time": crate::clock::rfc3339(self.at),
            "at": self.at,
            "client_id": self.client_id,
            "client_known": self.client_known,
            "verified": self.verified,
            "subject": self.subject,
            "account_id": self.account_id,
            "outcome": self.outcome.as_str(),
            "error": self.error,
            "reason": self.reason,
            "source_ip": self.source_ip,
            "via": self.via,
            "scope": self.scope,
        })
    }
}

/// A request-supplied value as it may be stored: control characters dropped, cut short.
pub fn sanitize(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD)
        .collect()
}

/// Which attempts to list.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub client_id: Option<String>,
    pub user: Option<Email>,
}

fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY)
}

fn all_pk(day: i64, shard: u32) -> String {
    format!("all#{day}#{shard}")
}
fn client_pk(client_id: &str, day: i64) -> String {
    format!("client#{client_id}#{day}")
}
fn user_pk(email: &Email, day: i64) -> String {
    format!("user#{}#{day}", email.as_str())
}

/// Sort key: the second, then the wall clock's nanoseconds made strictly increasing within
/// the process (orders attempts within one second, also under a pinned test clock), then
/// randomness (keys from two processes never collide).
fn sort_key(at: i64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let prev = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(wall.max(last + 1))
        })
        .unwrap_or(0);
    let nanos = wall.max(prev + 1);
    format!(
        "{at:012}#{nanos:020}#{}",
        hex::encode(crate::crypto::random_bytes(4))
    )
}

#[async_trait]
pub trait LoginHistory {
    /// Writes one attempt into every view it belongs to; it lives [`RETENTION_SECS`].
    async fn record_attempt(&self, attempt: &LoginAttempt) -> Result<(), StoreError>;
    /// The newest `limit` live attempts matching the filter, newest first.
    async fn login_attempts(
        &self,
        filter: &HistoryFilter,
        limit: usize,
    ) -> Result<Vec<LoginAttempt>, StoreError>;
}

impl LoginAttempt {
    /// The partitions this attempt is written to, and until when it is kept.
    fn views(&self) -> (Vec<String>, i64) {
        let day = day_of(self.at);
        let mut pks = vec![all_pk(day, crate::crypto::random_below(ALL_SHARDS))];
        if !self.verified {
            return (pks, self.at + UNVERIFIED_RETENTION_SECS);
        }
        if let Some(c) = &self.client_id {
            pks.push(client_pk(c, day));
        }
        if let Some(email) = self.subject.as_deref().and_then(|s| Email::parse(s).ok()) {
            pks.push(user_pk(&email, day));
        }
        (pks, self.at + RETENTION_SECS)
    }
}

#[async_trait]
impl LoginHistory for Store {
    async fn record_attempt(&self, attempt: &LoginAttempt) -> Result<(), StoreError> {
        let sk = sort_key(attempt.at);
        let (pks, expires) = attempt.views();
        let ops = pks
            .into_iter()
            .map(|pk| {
                Ok(record::create(
                    Table::LoginHistory,
                    Item::new(pk, sk.clone(), attempt)?.expiring(expires),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(ops).await
    }

    async fn login_attempts(
        &self,
        filter: &HistoryFilter,
        limit: usize,
    ) -> Result<Vec<LoginAttempt>, StoreError> {
        let now = self.now();
        let mut out = Vec::new();
        let mut day = day_of(now);
        let oldest = day_of(now - RETENTION_SECS);
        while day >= oldest && out.len() < limit {
            let pks = match (&filter.client_id, &filter.user) {
                (Some(c), _) => vec![client_pk(c, day)],
                (None, Some(u)) => vec![user_pk(u, day)],
                (None, None) => (0..ALL_SHARDS).map(|s| all_pk(day, s)).collect(),
            };
            let want = limit - out.len();
            let mut items: Vec<(String, LoginAttempt)> = Vec::new();
            for pk in pks {
                let page = self
                    .backend()
                    .query_newest(Table::LoginHistory, &pk, "", want, now)
                    .await?;
                for item in page {
                    items.push((item.sk.clone(), item.parse()?));
                }
            }
            // Newest first across the shards: sort keys begin with the time.
            items.sort_by(|a, b| b.0.cmp(&a.0));
            out.extend(items.into_iter().map(|(_, a)| a).filter(|a| {
                match &filter.user {
                    Some(u) => a
                        .subject
                        .as_deref()
                        .and_then(|s| Email::parse(s).ok())
                        .is_some_and(|e| &e == u),
                    None => true,
                }
            }));
            day -= 1;
        }
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_drops_control_characters_and_cuts() {
        assert_eq!(sanitize("a\nb\u{7}c"), "abc");
        assert_eq!(sanitize(&"x".repeat(1000)).len(), MAX_FIELD);
    }

    #[test]
    fn sort_keys_order_by_time_then_insertion() {
        let a = sort_key(5);
        let b = sort_key(5);
        let c = sort_key(40);
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn days_are_utc_days() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
    }
}
