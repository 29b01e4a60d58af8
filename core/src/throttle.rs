//! Throttling's rules, pure: the limits (configuration), which keys an attempt counts
//! under and what reaching a limit does there (a lock of that key, or a surge that locks
//! nobody), how long a lock lasts, and the records' layout in the `once` table.
//! `identity-shared`'s `throttle` does the counting (`Store::add`) and the reads.

use std::net::IpAddr;

/// The limits of one action within one window. A limit of 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Per subject (email or account).
    pub subject: u32,
    /// Per source address prefix ([`Limits::ipv4_prefix`]; IPv6: per /64).
    pub address: u32,
    /// All subjects and addresses together: past it, a surge (an alarm, and a proof of work
    /// asked of browsers not known to the account), never a lock.
    pub total: u32,
}

/// The limits of every action (configuration: `IDENTITY_LIMIT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub window_secs: i64,
    /// How many leading bits of an IPv4 address make one address key (8–32; IPv6: /64).
    pub ipv4_prefix: u8,
    pub password: Limit,
    pub device: Limit,
    pub reset: Limit,
    pub jwt: Limit,
    pub device_start: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            window_secs: 900,
            ipv4_prefix: 24,
            password: Limit {
                subject: 10,
                address: 100,
                total: 10_000,
            },
            device: Limit {
                subject: 10,
                address: 50,
                total: 5_000,
            },
            reset: Limit {
                subject: 3,
                address: 20,
                total: 1_000,
            },
            // Per client the failures are not limited: `iss` is not a secret, and a limit
            // on it would let anyone lock a CI system out. Per address they are.
            jwt: Limit {
                subject: 0,
                address: 100,
                total: 0,
            },
            // Starting a device login writes two records for anyone who asks: per address
            // it is bounded (an office behind one NAT starts far fewer than 100 logins in 15
            // minutes); nothing else is, so no one can lock others out of `identity login`.
            device_start: Limit {
                subject: 0,
                address: 100,
                total: 0,
            },
        }
    }
}

impl Limits {
    /// Reads `IDENTITY_LIMIT_WINDOW_SECS`, `IDENTITY_LIMIT_IPV4_PREFIX` and `IDENTITY_LIMIT_{PASSWORD,DEVICE,RESET,JWT}`
    /// (`SUBJECT,ADDRESS,TOTAL`, for example `10,100,10000`) through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut limits = Self::default();
        if let Some(v) = var("IDENTITY_LIMIT_WINDOW_SECS") {
            limits.window_secs = v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|s| (60..=86_400).contains(s))
                .ok_or("IDENTITY_LIMIT_WINDOW_SECS must be 60..=86400")?;
        }
        if let Some(v) = var("IDENTITY_LIMIT_IPV4_PREFIX") {
            limits.ipv4_prefix = v
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| (8..=32).contains(b))
                .ok_or("IDENTITY_LIMIT_IPV4_PREFIX must be 8..=32")?;
        }
        for (name, slot) in [
            ("IDENTITY_LIMIT_PASSWORD", &mut limits.password),
            ("IDENTITY_LIMIT_DEVICE", &mut limits.device),
            ("IDENTITY_LIMIT_RESET", &mut limits.reset),
            ("IDENTITY_LIMIT_JWT", &mut limits.jwt),
            ("IDENTITY_LIMIT_DEVICE_START", &mut limits.device_start),
        ] {
            if let Some(v) = var(name) {
                *slot = parse_limit(&v)
                    .ok_or_else(|| format!("{name} must be SUBJECT,ADDRESS,TOTAL (numbers)"))?;
            }
        }
        Ok(limits)
    }
}

fn parse_limit(v: &str) -> Option<Limit> {
    let n: Vec<u32> = v
        .split(',')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .ok()?;
    let [subject, address, total] = n.as_slice() else {
        return None;
    };
    Some(Limit {
        subject: *subject,
        address: *address,
        total: *total,
    })
}

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
pub fn limit_of(limits: &Limits, action: Action) -> Limit {
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
pub fn strangers_name_the_subject(action: Action) -> bool {
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
pub fn total_pk(action: Action, shard: u32) -> String {
    format!("limit#{}#total#{shard}", action.as_str())
}

/// The record that says the action's total surges (written by the shard that reached its
/// share; it expires with the window).
pub fn surge_pk(action: Action) -> String {
    format!("limit#{}#surge", action.as_str())
}

/// Emails are hashed: throttle records should not list who was tried.
fn hashed(action: Action, scope: &str, value: &str) -> String {
    let h = crate::digest::sha256_hex(format!("{}\n{scope}\n{value}", action.as_str()).as_bytes());
    format!("limit#{}#{scope}#{}", action.as_str(), &h[..32])
}

/// The record key of a subject from everywhere: its count, and its generation (`gen`).
pub fn subject_pk(action: Action, subject: &str) -> String {
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

/// The sort keys under a key's partition: its lock, its strikes (locks within a day), the
/// subject's generation (moved on by a reset).
pub const LOCK_SK: &str = "lock";
pub const STRIKES_SK: &str = "strikes";
pub const GENERATION_SK: &str = "gen";

/// The sort key of a key's count in the window that holds `now`.
pub fn count_sk(now: i64, window_secs: i64) -> String {
    format!("w#{}", now.div_euclid(window_secs))
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
    fn waits_read_as_people_say_them() {
        assert_eq!(Locked { retry_after: 1 }.wait_text(), "1 second");
        assert_eq!(Locked { retry_after: 900 }.wait_text(), "15 minutes");
        assert_eq!(Locked { retry_after: 7200 }.wait_text(), "2 hours");
    }
}
