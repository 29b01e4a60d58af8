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
//! ([`lock_secs`], [`shard_limit`], [`address_key`], [`keys`]) and the limits are
//! `identity_core::throttle`'s pure functions; the store work is [`Throttling`].

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::config::{Limit, Limits};
use crate::crypto;
use crate::store::{Item, Store, StoreError, Table, record};

pub use identity_core::throttle::{
    Action, Attempt, Key, Locked, MAX_LOCK_SECS, Reach, TOTAL_SHARDS, Verdict, address_key, keys,
    lock_secs, shard_limit,
};
use identity_core::throttle::{
    GENERATION_SK, LOCK_SK, STRIKES_SK, count_sk, limit_of, strangers_name_the_subject, subject_pk,
    surge_pk,
};

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
}
