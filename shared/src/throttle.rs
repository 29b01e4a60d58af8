//! Throttling of guessable routes: failed password sign-ins (the sign-in page and the SSO
//! upgrade's confirmation), `/device` user-code lookups, password-reset requests and the
//! JWT grant's failures.
//!
//! Attempts are counted in fixed windows ([`Limits::window_secs`], 15 minutes by default).
//! Each count is one conditional update ([`Store::add`]) of a record in the `once` table
//! that expires with its window. What the counts do is built so that nobody can turn them
//! against someone else (OWASP's "device cookies"):
//!
//! - A count that reaches its limit *locks* only the key that made it: a subject from one
//!   address prefix (strangers guessing one person's password lock themselves out, not the
//!   person), a browser that holds a device cookie for the account (its own failures, from
//!   anywhere), an address prefix ([`address_key`]: an IPv4 /24 by default, an IPv6 /64),
//!   or, for actions where the subject is the signed-in person (`/device`), the subject.
//!   The lock record expires after the window the first time, and doubles with every
//!   further lock within a day (up to a day). While a key is locked every attempt under it
//!   is refused, a right password too.
//! - A count that reaches its limit for what *others* do (a subject from every address,
//!   the total over [`TOTAL_SHARDS`] records, each allowed its share, the first to reach
//!   it marking the action as surging until the window ends) is a *surge*: it locks
//!   nobody. It raises an alarm (a `throttle surge` warning) and asks attempts from
//!   browsers not known to the account for more ([`Verdict::Prove`]: the page's proof of
//!   work, [`crate::http::work`]).
//! - A browser that signed in to the account before ([`Attempt::device`]) is counted only
//!   under its own key: a lock or surge made by strangers does not reach it.
//! - A password reset ([`Throttling::throttle_clear`]) lifts the subject's locks and forgets
//!   its strikes: every per-prefix and per-device key of a subject carries the subject's
//!   generation, which the reset moves on.
//!
//! What cannot be checked is refused ([`StoreError`] is the caller's 503). The decisions
//! ([`lock_secs`], [`shard_limit`], [`address_key`], [`keys`]) are pure functions; the
//! store work is [`Throttling`].

use std::net::IpAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::config::{Limit, Limits};
use crate::crypto;
use crate::store::{Item, Store, StoreError, Table, record};

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
    /// A device authorization started (`POST /oauth/device/authorize`): every start counts,
    /// per address, before anything is stored.
    DeviceStart,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Password => "password",
            Action::DeviceCode => "device",
            Action::ResetRequest => "reset",
            Action::JwtGrant => "jwt",
            Action::DeviceStart => "device-start",
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
        Action::DeviceStart => limits.device_start,
    }
}

/// Who is attempting: the subject (an email or account id, as the route knows it), the
/// source address (API Gateway's `sourceIp`, or the peer; never `X-Forwarded-For`), and
/// the device cookie's nonce when this browser signed in to the subject's account before.
#[derive(Debug, Clone, Default)]
pub struct Attempt<'a> {
    pub subject: Option<&'a str>,
    pub address: Option<IpAddr>,
    pub device: Option<&'a str>,
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

/// What a check decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Go,
    /// Go ahead once the browser has shown a proof of work: others' failures surge.
    Prove,
    /// Refused: this attempt's own key is locked.
    Locked(Locked),
}

/// The key of an address: an IPv4 prefix of `v4_prefix` bits (one office, one NAT, one
/// hosting block usually holds a /24), an IPv6 /64 (one host usually holds a whole /64),
/// or `unknown` (every request without one shares a key: fail closed).
pub fn address_key(address: Option<IpAddr>, v4_prefix: u8) -> String {
    match address.map(|a| a.to_canonical()) {
        Some(IpAddr::V4(v4)) => {
            let bits = u32::from(v4_prefix.clamp(8, 32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            let net = std::net::Ipv4Addr::from(u32::from(v4) & mask);
            format!("{net}/{bits}")
        }
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

/// Is the subject of this action someone strangers can name (an email typed on a page)?
/// Then its count from everywhere is a surge, and its locks are per prefix and per device.
/// Otherwise (the signed-in account at `/device`) the subject is the one attempting, and
/// its own count locks it.
fn strangers_name_the_subject(action: Action) -> bool {
    matches!(action, Action::Password | Action::ResetRequest)
}

/// What reaching a key's limit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Locks the key.
    Lock,
    /// Raises the alarm and asks for more from browsers not known to the account.
    Surge,
    /// A surge counted in one of [`TOTAL_SHARDS`] records: the first shard to reach its
    /// share writes the action's surge record ([`surge_pk`]), which every check reads, so
    /// the surge holds for every attempt until the window ends.
    Total,
}

/// One counted key: its record key, its limit, and what reaching it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub limit: i64,
    pub reach: Reach,
}

/// The record key of one shard of an action's total.
fn total_pk(action: Action, shard: u32) -> String {
    format!("limit#{}#total#{shard}", action.as_str())
}

/// The record that says the action's total surges (written by the shard that reached its
/// share; it expires with the window).
fn surge_pk(action: Action) -> String {
    format!("limit#{}#surge", action.as_str())
}

/// Emails are hashed: throttle records should not list who was tried.
fn hashed(action: Action, scope: &str, value: &str) -> String {
    let h = crypto::sha256_hex(format!("{}\n{scope}\n{value}", action.as_str()).as_bytes());
    format!("limit#{}#{scope}#{}", action.as_str(), &h[..32])
}

/// The record key of a subject from everywhere: its count, and its generation (`gen`).
fn subject_pk(action: Action, subject: &str) -> String {
    hashed(action, "subject", &subject.to_lowercase())
}

/// The keys an attempt is counted under, with their limits (0 = not counted). `generation`
/// is the subject's ([`Throttling::throttle_clear`] moves it on).
pub fn keys(
    action: Action,
    limits: &Limits,
    attempt: &Attempt<'_>,
    shard: u32,
    generation: i64,
) -> Vec<Key> {
    let limit = limit_of(limits, action);
    let mut out = Vec::with_capacity(4);
    let subject = attempt
        .subject
        .filter(|_| limit.subject > 0)
        .map(str::to_lowercase);
    let per_subject = i64::from(limit.subject);
    if let Some(subject) = &subject {
        if !strangers_name_the_subject(action) {
            out.push(Key {
                pk: subject_pk(action, subject),
                limit: per_subject,
                reach: Reach::Lock,
            });
        } else if let Some(device) = attempt.device {
            // A browser known to the account: its own failures only, from anywhere.
            out.push(Key {
                pk: hashed(
                    action,
                    "device",
                    &format!("{generation}\n{subject}\n{device}"),
                ),
                limit: per_subject,
                reach: Reach::Lock,
            });
            return out;
        } else {
            out.push(Key {
                pk: subject_pk(action, subject),
                limit: per_subject,
                reach: Reach::Surge,
            });
            let prefix = address_key(attempt.address, limits.ipv4_prefix);
            out.push(Key {
                pk: hashed(
                    action,
                    "subject-at",
                    &format!("{generation}\n{subject}\n{prefix}"),
                ),
                limit: per_subject,
                reach: Reach::Lock,
            });
        }
    }
    if limit.address > 0 {
        out.push(Key {
            pk: hashed(
                action,
                "address",
                &address_key(attempt.address, limits.ipv4_prefix),
            ),
            limit: i64::from(limit.address),
            reach: Reach::Lock,
        });
    }
    if limit.total > 0 {
        out.push(Key {
            pk: total_pk(action, shard),
            limit: shard_limit(limit.total),
            reach: Reach::Total,
        });
    }
    out
}

const LOCK_SK: &str = "lock";
const STRIKES_SK: &str = "strikes";
const GENERATION_SK: &str = "gen";

/// The sort key of a key's count in the window that holds `now`.
fn count_sk(now: i64, window_secs: i64) -> String {
    format!("w#{}", now.div_euclid(window_secs))
}

#[derive(Serialize, Deserialize)]
struct LockRecord {
    until: i64,
}

#[async_trait]
pub trait Throttling {
    /// What this attempt may do now.
    async fn throttle_check(
        &self,
        action: Action,
        limits: &Limits,
        attempt: &Attempt<'_>,
    ) -> Result<Verdict, StoreError>;
    /// Counts one attempt (a failure, or a request where every request counts); returns
    /// the lock it brought about on the attempt's own keys, if any.
    async fn throttle_count(
        &self,
        action: Action,
        limits: &Limits,
        attempt: &Attempt<'_>,
    ) -> Result<Option<Locked>, StoreError>;
    /// Lifts the subject's locks and forgets its strikes, from every prefix and browser (a
    /// password reset proves the owner is at the door).
    async fn throttle_clear(
        &self,
        action: Action,
        limits: &Limits,
        subject: &str,
    ) -> Result<(), StoreError>;
}

impl Store {
    /// The subject's records (its count from everywhere, its generation), when the attempt
    /// names one that is counted.
    async fn subject_records(
        &self,
        action: Action,
        limits: &Limits,
        attempt: &Attempt<'_>,
    ) -> Result<Option<(String, Vec<Item>)>, StoreError> {
        let Some(subject) = attempt
            .subject
            .filter(|_| limit_of(limits, action).subject > 0)
        else {
            return Ok(None);
        };
        let pk = subject_pk(action, subject);
        let items = self
            .backend()
            .query(Table::Once, &pk, "", self.now())
            .await?;
        Ok(Some((pk, items)))
    }
}

fn generation_of(records: &Option<(String, Vec<Item>)>) -> i64 {
    records
        .as_ref()
        .and_then(|(_, items)| items.iter().find(|i| i.sk == GENERATION_SK))
        .map_or(0, |i| i.version)
}

#[async_trait]
impl Throttling for Store {
    async fn throttle_check(
        &self,
        action: Action,
        limits: &Limits,
        attempt: &Attempt<'_>,
    ) -> Result<Verdict, StoreError> {
        let now = self.now();
        let window = limits.window_secs;
        let counting = count_sk(now, window);
        let subject = self.subject_records(action, limits, attempt).await?;
        let generation = generation_of(&subject);
        let mut longest: Option<i64> = None;
        let mut surge = false;
        let shard = crypto::random_below(TOTAL_SHARDS);
        for key in keys(action, limits, attempt, shard, generation) {
            // One read of the key's records: its lock, and this window's count. A count at
            // its limit refuses at once, before the lock that its last attempt writes has
            // landed, so attempts running side by side cannot slip past the limit.
            // The total is read from its surge record, not from one shard.
            let items = match &subject {
                _ if key.reach == Reach::Total => {
                    let pk = surge_pk(action);
                    let marks = self.backend().query(Table::Once, &pk, "", now).await?;
                    surge |= !marks.is_empty();
                    continue;
                }
                Some((pk, items)) if *pk == key.pk => items.clone(),
                _ => self.backend().query(Table::Once, &key.pk, "", now).await?,
            };
            for item in items {
                let at_limit = item.sk == counting && item.version >= key.limit;
                match key.reach {
                    Reach::Surge | Reach::Total => surge |= at_limit,
                    Reach::Lock => {
                        let wait = if item.sk == LOCK_SK {
                            let lock: LockRecord = item.parse()?;
                            (lock.until > now).then_some(lock.until - now)
                        } else {
                            at_limit.then(|| lock_secs(window, 1))
                        };
                        if let Some(wait) = wait {
                            longest = Some(longest.unwrap_or(0).max(wait));
                        }
                    }
                }
            }
        }
        Ok(match longest {
            Some(retry_after) => Verdict::Locked(Locked { retry_after }),
            None if surge && strangers_name_the_subject(action) => Verdict::Prove,
            None => Verdict::Go,
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
        let generation = if strangers_name_the_subject(action) {
            generation_of(&self.subject_records(action, limits, attempt).await?)
        } else {
            0
        };
        let mut lock: Option<Locked> = None;
        for key in keys(action, limits, attempt, shard, generation) {
            let count = self
                .add(Table::Once, &key.pk, &count_sk(now, window), 1, window_end)
                .await?;
            if key.reach != Reach::Lock {
                // Exactly one attempt sees the count reach the limit: it raises the alarm,
                // and a shard of the total tells every check.
                if count == key.limit && key.reach == Reach::Total {
                    let mark =
                        Item::new(surge_pk(action), "on", &LockRecord { until: window_end })?
                            .expiring(window_end);
                    self.write(vec![record::set(Table::Once, mark)]).await?;
                }
                if count == key.limit {
                    tracing::warn!(
                        action = action.as_str(),
                        alarm = "throttle-surge",
                        "throttle surge: failures from many addresses or for many subjects; \
                         browsers not known to an account are asked for a proof of work"
                    );
                }
                continue;
            }
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
            let item = Item::new(key.pk.clone(), LOCK_SK, &LockRecord { until })?.expiring(until);
            self.write(vec![record::set(Table::Once, item)]).await?;
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
        let pk = subject_pk(action, subject);
        let now = self.now();
        // A new generation: every per-prefix and per-device key of the subject (its counts,
        // locks and strikes) is left behind, to expire. It outlives them all.
        self.add(Table::Once, &pk, GENERATION_SK, 1, now + 2 * MAX_LOCK_SECS)
            .await?;
        // The subject's own records: its lock, its strikes, and this window's count (the
        // count at its limit refuses, or surges, too).
        let counting = count_sk(now, limits.window_secs);
        let ops = [LOCK_SK.to_string(), STRIKES_SK.to_string(), counting]
            .map(|sk| record::remove(Table::Once, pk.clone(), sk))
            .into();
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
    fn ipv4_addresses_count_per_24_by_default_ipv6_per_64_and_a_missing_address_shares_one_key() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(Some(a), 24), address_key(Some(b), 24));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(Some(mapped), 24), "192.0.2.0/24");
        let neighbour: IpAddr = "192.0.2.200".parse().unwrap();
        assert_eq!(address_key(Some(neighbour), 24), "192.0.2.0/24");
        assert_eq!(address_key(Some(neighbour), 32), "192.0.2.200/32");
        assert_eq!(address_key(Some(neighbour), 16), "192.0.0.0/16");
        assert_eq!(address_key(None, 24), "unknown");
        assert_eq!(Limits::default().ipv4_prefix, 24);
    }

    fn attempt<'a>(subject: &'a str, address: &str, device: Option<&'a str>) -> Attempt<'a> {
        Attempt {
            subject: Some(subject),
            address: Some(address.parse().unwrap()),
            device,
        }
    }

    #[test]
    fn subjects_count_case_insensitively_and_zero_limits_count_nothing() {
        let limits = Limits {
            password: Limit {
                subject: 3,
                address: 0,
                total: 0,
            },
            ..Limits::default()
        };
        let a = keys(
            Action::Password,
            &limits,
            &attempt("Ann@Example.com", "192.0.2.1", None),
            0,
            0,
        );
        let b = keys(
            Action::Password,
            &limits,
            &attempt("ann@example.com", "192.0.2.1", None),
            0,
            0,
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(
            a.iter().all(|k| !k.pk.contains("ann")),
            "emails are hashed: {a:?}"
        );
    }

    #[test]
    fn strangers_lock_a_subject_only_from_their_prefix_and_only_surge_it_from_everywhere() {
        let limits = Limits::default();
        let ks = keys(
            Action::Password,
            &limits,
            &attempt("ann@example.com", "192.0.2.1", None),
            3,
            0,
        );
        let reach: Vec<(Reach, bool)> = ks
            .iter()
            .map(|k| (k.reach, k.pk.contains("#subject-at#")))
            .collect();
        assert_eq!(
            reach,
            [
                (Reach::Surge, false), // the subject from everywhere
                (Reach::Lock, true),   // the subject from this /24
                (Reach::Lock, false),  // the address
                (Reach::Total, false), // the total
            ]
        );
        let other_prefix = keys(
            Action::Password,
            &limits,
            &attempt("ann@example.com", "198.51.100.1", None),
            3,
            0,
        );
        assert_ne!(ks[1].pk, other_prefix[1].pk);
        let same_prefix = keys(
            Action::Password,
            &limits,
            &attempt("ann@example.com", "192.0.2.77", None),
            3,
            0,
        );
        assert_eq!(ks[1].pk, same_prefix[1].pk);
        let next_generation = keys(
            Action::Password,
            &limits,
            &attempt("ann@example.com", "192.0.2.1", None),
            3,
            1,
        );
        assert_eq!(
            ks[0].pk, next_generation[0].pk,
            "the subject's own record stays"
        );
        assert_ne!(
            ks[1].pk, next_generation[1].pk,
            "a reset leaves per-prefix strikes behind"
        );
    }

    #[test]
    fn a_known_browser_is_counted_under_its_own_key_alone() {
        let limits = Limits::default();
        let ks = keys(
            Action::Password,
            &limits,
            &attempt("ann@example.com", "192.0.2.1", Some("n1")),
            3,
            0,
        );
        assert_eq!(ks.len(), 1, "{ks:?}");
        assert_eq!(ks[0].reach, Reach::Lock);
        assert!(ks[0].pk.contains("#device#"));
        let elsewhere = keys(
            Action::Password,
            &limits,
            &attempt("ann@example.com", "203.0.113.9", Some("n1")),
            5,
            0,
        );
        assert_eq!(ks, elsewhere, "the same key from any address");
    }

    #[test]
    fn the_signed_in_subject_of_device_codes_locks_itself_and_totals_never_lock() {
        let limits = Limits::default();
        let ks = keys(
            Action::DeviceCode,
            &limits,
            &attempt("acct-1", "192.0.2.1", None),
            0,
            0,
        );
        assert_eq!(ks[0].reach, Reach::Lock);
        assert!(!ks[0].pk.contains("subject-at"));
        for action in [Action::Password, Action::DeviceCode, Action::ResetRequest] {
            let ks = keys(
                action,
                &limits,
                &attempt("x@example.com", "192.0.2.1", None),
                0,
                0,
            );
            let total = ks.iter().find(|k| k.pk.contains("#total#")).unwrap();
            assert_eq!(total.reach, Reach::Total, "{action:?}");
        }
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
            Limits::from_vars(|n| (n == "IDENTITY_LIMIT_IPV4_PREFIX").then(|| "16".into()))
                .unwrap()
                .ipv4_prefix,
            16
        );
        for bad in ["7", "33", "x"] {
            let v = |n: &str| (n == "IDENTITY_LIMIT_IPV4_PREFIX").then(|| bad.to_string());
            assert!(Limits::from_vars(v).is_err(), "{bad}");
        }
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
