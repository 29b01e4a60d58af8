//! Throttling of guessable routes: failed password sign-ins (the sign-in page and the SSO
//! upgrade's confirmation), `/device` user-code lookups, password-reset requests and the
//! JWT grant's failures.
//!
//! Attempts are counted per subject (the email or account), per source address and in
//! total, in fixed windows ([`Limits::window_secs`], 15 minutes by default). Each count is
//! one conditional update ([`Store::add`]) of a record in the `once` table that expires
//! with its window; the total is spread over [`TOTAL_SHARDS`] records so no item is hot,
//! each allowed its share of the limit. A count that reaches its limit locks that key: the
//! lock record expires after the window the first time, and doubles with every further
//! lock within a day (up to a day). While a key is locked every attempt is refused, a
//! right password too. What cannot be checked is refused ([`StoreError`] is the caller's
//! 503).
//!
//! The decisions ([`lock_secs`], [`shard_limit`], [`address_key`]) are pure functions;
//! the store work is [`Throttling`].

use std::net::IpAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::config::{Limit, Limits};
use crate::crypto;
use crate::store::{Cond, Item, Op, Store, StoreError, Table};

/// How many records share the total count of one action.
pub const TOTAL_SHARDS: u32 = 16;
/// The longest lock.
pub const MAX_LOCK_SECS: i64 = 86_400;

/// What is being attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A password checked: `POST /login`, the SSO upgrade's confirmation.
    Password,
    /// A user code looked up on `/device`.
    DeviceCode,
    /// A password-reset link asked for.
    ResetRequest,
    /// A JWT bearer grant that failed.
    JwtGrant,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Password => "password",
            Action::DeviceCode => "device",
            Action::ResetRequest => "reset",
            Action::JwtGrant => "jwt",
        }
    }
}

/// The limit of one action.
fn limit_of(limits: &Limits, action: Action) -> Limit {
    match action {
        Action::Password => limits.password,
        Action::DeviceCode => limits.device,
        Action::ResetRequest => limits.reset,
        Action::JwtGrant => limits.jwt,
    }
}

/// Who is attempting: the subject (an email or account id, as the route knows it) and the
/// source address (API Gateway's `sourceIp`, or the peer; never `X-Forwarded-For`).
#[derive(Debug, Clone, Default)]
pub struct Attempt<'a> {
    pub subject: Option<&'a str>,
    pub address: Option<IpAddr>,
}

/// Refused until `retry_after` seconds from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub retry_after: i64,
}

impl Locked {
    /// "3 minutes", "1 hour": for pages.
    pub fn wait_text(&self) -> String {
        let s = self.retry_after.max(1);
        let (n, unit) = if s < 120 {
            (s, "second")
        } else if s < 2 * 3600 {
            ((s + 59) / 60, "minute")
        } else {
            ((s + 3599) / 3600, "hour")
        };
        format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

/// The key of an address: an IPv4 address, an IPv6 /64 (one host usually holds a whole
/// /64), or `unknown` (every request without one shares a key: fail closed).
pub fn address_key(address: Option<IpAddr>) -> String {
    match address.map(|a| a.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_string(),
    }
}

/// How long the `strikes`-th lock of a key within a day lasts: the window, doubled for
/// every earlier lock, at most [`MAX_LOCK_SECS`].
pub fn lock_secs(window_secs: i64, strikes: i64) -> i64 {
    let doublings = u32::try_from((strikes - 1).clamp(0, 20)).unwrap_or(20);
    window_secs
        .saturating_mul(1_i64 << doublings)
        .min(MAX_LOCK_SECS)
}

/// The share of a total limit each of the [`TOTAL_SHARDS`] counters allows (at least 1).
pub fn shard_limit(total: u32) -> i64 {
    i64::from(total.div_ceil(TOTAL_SHARDS).max(1))
}

/// One counted key: its record key, its limit, and whether it is a shard of the total
/// (whose lock every shard carries).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    pk: String,
    limit: i64,
    total: bool,
}

/// The record key of one shard of an action's total.
fn total_pk(action: Action, shard: u32) -> String {
    format!("limit#{}#total#{shard}", action.as_str())
}

/// The keys an attempt is counted under, with their limits (0 = not counted).
fn keys(action: Action, limit: Limit, attempt: &Attempt<'_>, shard: u32) -> Vec<Key> {
    let mut out = Vec::with_capacity(3);
    let hashed = |scope: &str, value: &str| {
        // Emails are hashed: throttle records should not list who was tried.
        let h = crypto::sha256_hex(format!("{}\n{scope}\n{value}", action.as_str()).as_bytes());
        format!("limit#{}#{scope}#{}", action.as_str(), &h[..32])
    };
    if limit.subject > 0
        && let Some(subject) = attempt.subject
    {
        out.push(Key {
            pk: hashed("subject", &subject.to_lowercase()),
            limit: i64::from(limit.subject),
            total: false,
        });
    }
    if limit.address > 0 {
        out.push(Key {
            pk: hashed("address", &address_key(attempt.address)),
            limit: i64::from(limit.address),
            total: false,
        });
    }
    if limit.total > 0 {
        out.push(Key {
            pk: total_pk(action, shard),
            limit: shard_limit(limit.total),
            total: true,
        });
    }
    out
}

const LOCK_SK: &str = "lock";

/// The sort key of a key's count in the window that holds `now`.
fn count_sk(now: i64, window_secs: i64) -> String {
    format!("w#{}", now.div_euclid(window_secs))
}
const STRIKES_SK: &str = "strikes";

#[derive(Serialize, Deserialize)]
struct LockRecord {
    until: i64,
}

#[async_trait]
pub trait Throttling {
    /// `Err(Locked)` when any key of the attempt is locked now.
    async fn throttle_check(
        &self,
        action: Action,
        limits: &Limits,
        attempt: &Attempt<'_>,
    ) -> Result<Result<(), Locked>, StoreError>;
    /// Counts one attempt (a failure, or a request where every request counts); returns
    /// the lock it brought about, if any.
    async fn throttle_count(
        &self,
        action: Action,
        limits: &Limits,
        attempt: &Attempt<'_>,
    ) -> Result<Option<Locked>, StoreError>;
    /// Lifts the subject's lock (a password reset proves the owner is at the door).
    async fn throttle_clear(
        &self,
        action: Action,
        limits: &Limits,
        subject: &str,
    ) -> Result<(), StoreError>;
}

#[async_trait]
impl Throttling for Store {
    async fn throttle_check(
        &self,
        action: Action,
        limits: &Limits,
        attempt: &Attempt<'_>,
    ) -> Result<Result<(), Locked>, StoreError> {
        let now = self.now();
        let window = limits.window_secs;
        let counting = count_sk(now, window);
        let mut longest: Option<i64> = None;
        for key in keys(
            action,
            limit_of(limits, action),
            attempt,
            crypto::random_below(TOTAL_SHARDS),
        ) {
            // One read of the key's records: its lock, and this window's count. A count at
            // its limit refuses at once, before the lock that its last attempt writes has
            // landed, so attempts running side by side cannot slip past the limit.
            for item in self.backend().query(Table::Once, &key.pk, "", now).await? {
                let wait = if item.sk == LOCK_SK {
                    let lock: LockRecord = item.parse()?;
                    (lock.until > now).then_some(lock.until - now)
                } else if item.sk == counting && item.version >= key.limit {
                    Some(lock_secs(window, 1))
                } else {
                    None
                };
                if let Some(wait) = wait {
                    longest = Some(longest.unwrap_or(0).max(wait));
                }
            }
        }
        Ok(match longest {
            Some(retry_after) => Err(Locked { retry_after }),
            None => Ok(()),
        })
    }

    async fn throttle_count(
        &self,
        action: Action,
        limits: &Limits,
        attempt: &Attempt<'_>,
    ) -> Result<Option<Locked>, StoreError> {
        let now = self.now();
        let window = limits.window_secs;
        let window_end = (now.div_euclid(window) + 1) * window;
        let shard = crypto::random_below(TOTAL_SHARDS);
        let mut lock: Option<Locked> = None;
        for key in keys(action, limit_of(limits, action), attempt, shard) {
            let count = self
                .add(Table::Once, &key.pk, &count_sk(now, window), 1, window_end)
                .await?;
            // Exactly one attempt sees the count reach the limit (or a multiple of it, after
            // a lock was lifted early): it sets the lock.
            if count % key.limit != 0 {
                continue;
            }
            let strikes = self
                .add(Table::Once, &key.pk, STRIKES_SK, 1, now + MAX_LOCK_SECS)
                .await?;
            let secs = lock_secs(window, strikes);
            let until = now + secs;
            let lock_pks: Vec<String> = if key.total {
                // Every shard of the total carries the lock: a check reads one shard.
                (0..TOTAL_SHARDS).map(|s| total_pk(action, s)).collect()
            } else {
                vec![key.pk.clone()]
            };
            let ops = lock_pks
                .into_iter()
                .map(|pk| {
                    Ok(Op::Put {
                        table: Table::Once,
                        item: Item::new(pk, LOCK_SK, &LockRecord { until })?.expiring(until),
                        cond: Cond::Always,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.write(ops).await?;
            tracing::warn!(
                action = action.as_str(),
                lock_secs = secs,
                strikes,
                "throttle: a limit was reached; locked"
            );
            lock = Some(Locked {
                retry_after: lock.map_or(secs, |l| l.retry_after.max(secs)),
            });
        }
        Ok(lock)
    }

    async fn throttle_clear(
        &self,
        action: Action,
        limits: &Limits,
        subject: &str,
    ) -> Result<(), StoreError> {
        let only_subject = Limit {
            address: 0,
            total: 0,
            ..limit_of(limits, action)
        };
        let who = Attempt {
            subject: Some(subject),
            address: None,
        };
        // The lock and this window's count: the count at its limit refuses too.
        let counting = count_sk(self.now(), limits.window_secs);
        let ops = keys(action, only_subject, &who, 0)
            .into_iter()
            .flat_map(|k| {
                [LOCK_SK.to_string(), counting.clone()].map(|sk| Op::Delete {
                    table: Table::Once,
                    pk: k.pk.clone(),
                    sk,
                    cond: Cond::Always,
                })
            })
            .collect();
        self.write(ops).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_lasts_a_window_and_doubles_with_every_strike_up_to_a_day() {
        assert_eq!(lock_secs(900, 1), 900);
        assert_eq!(lock_secs(900, 2), 1800);
        assert_eq!(lock_secs(900, 3), 3600);
        assert_eq!(lock_secs(900, 40), MAX_LOCK_SECS);
    }

    #[test]
    fn each_total_shard_allows_its_share_of_the_total() {
        assert_eq!(shard_limit(10_000), 625);
        assert_eq!(shard_limit(1), 1);
        assert_eq!(shard_limit(17), 2);
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_a_missing_address_shares_one_key() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(Some(mapped)), "192.0.2.7");
        assert_eq!(address_key(None), "unknown");
    }

    #[test]
    fn subjects_count_case_insensitively_and_zero_limits_count_nothing() {
        let limit = Limit {
            subject: 3,
            address: 0,
            total: 0,
        };
        let a = keys(
            Action::Password,
            limit,
            &Attempt {
                subject: Some("Ann@Example.com"),
                address: None,
            },
            0,
        );
        let b = keys(
            Action::Password,
            limit,
            &Attempt {
                subject: Some("ann@example.com"),
                address: None,
            },
            0,
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 1);
        assert!(!a[0].pk.contains("ann"), "emails are hashed: {}", a[0].pk);
    }

    #[test]
    fn limits_read_from_configuration_and_refuse_nonsense() {
        let vars = |name: &str| match name {
            "IDENTITY_LIMIT_PASSWORD" => Some("5, 50, 500".to_string()),
            "IDENTITY_LIMIT_WINDOW_SECS" => Some("600".to_string()),
            _ => None,
        };
        let l = Limits::from_vars(vars).unwrap();
        assert_eq!(l.window_secs, 600);
        assert_eq!(
            l.password,
            Limit {
                subject: 5,
                address: 50,
                total: 500
            }
        );
        assert_eq!(l.jwt, Limits::default().jwt);
        assert!(Limits::from_vars(|n| (n == "IDENTITY_LIMIT_JWT").then(|| "1,2".into())).is_err());
        assert!(
            Limits::from_vars(|n| (n == "IDENTITY_LIMIT_WINDOW_SECS").then(|| "5".into())).is_err()
        );
    }

    #[test]
    fn waits_read_as_people_say_them() {
        assert_eq!(Locked { retry_after: 1 }.wait_text(), "1 second");
        assert_eq!(Locked { retry_after: 900 }.wait_text(), "15 minutes");
        assert_eq!(Locked { retry_after: 7200 }.wait_text(), "2 hours");
    }
}
