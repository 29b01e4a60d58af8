//! The login history of the JWT bearer grant: every attempt, good or bad, with its time,
//! client, subject, outcome, reason and source IP, kept for [`RETENTION_SECS`] (the table's
//! TTL). What an operator reads with `identity admin login-history`.
//!
//! Each attempt is written once per view it appears in, in one atomic write: all attempts,
//! the client's attempts (when the `iss` names a registered client) and the user's
//! attempts (when `sub` is an email). Every view is partitioned by UTC day, so a listing
//! reads the newest days first and stops when it has enough.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::accounts::Email;
use crate::store::{Cond, Item, Op, Store, StoreError, Table};

/// How long attempts are kept: 90 days.
pub const RETENTION_SECS: i64 = 90 * 86_400;
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

fn all_pk(day: i64) -> String {
    format!("all#{day}")
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

#[async_trait]
impl LoginHistory for Store {
    async fn record_attempt(&self, attempt: &LoginAttempt) -> Result<(), StoreError> {
        let day = day_of(attempt.at);
        let sk = sort_key(attempt.at);
        let expires = attempt.at + RETENTION_SECS;
        let mut pks = vec![all_pk(day)];
        if attempt.client_known
            && let Some(c) = &attempt.client_id
        {
            pks.push(client_pk(c, day));
        }
        if let Some(email) = attempt
            .subject
            .as_deref()
            .and_then(|s| Email::parse(s).ok())
        {
            pks.push(user_pk(&email, day));
        }
        let ops = pks
            .into_iter()
            .map(|pk| {
                Ok(Op::Put {
                    table: Table::LoginHistory,
                    item: Item::new(pk, sk.clone(), attempt)?.expiring(expires),
                    cond: Cond::Absent,
                })
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
            let pk = match (&filter.client_id, &filter.user) {
                (Some(c), _) => client_pk(c, day),
                (None, Some(u)) => user_pk(u, day),
                (None, None) => all_pk(day),
            };
            let mut items: Vec<LoginAttempt> = self.query(Table::LoginHistory, &pk, "").await?;
            items.reverse();
            out.extend(items.into_iter().filter(|a| {
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
