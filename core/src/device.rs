//! The device authorization grant's records (RFC 8628) and its poll as a plan: given the
//! stored request (or none), its grant once approved, the polling client and `now`, what
//! the poll answers and the one conditional write that goes with it.

use serde::{Deserialize, Serialize};

use crate::code::{Issue, Issued};
use crate::digest::same;
use crate::grant::Grant;
use crate::ids::{AccountId, ClientId, GrantId};
use crate::plan::Plan;
use crate::refresh;
use crate::scope::Scopes;
use crate::store::{Cond, Item, Op, StoreError, Table};

pub const DEVICE_TTL_SECS: i64 = 600;
/// How long the record outlives the request (for `expired_token`).
pub const KEPT_AFTER_EXPIRY_SECS: i64 = 600;
/// The polling interval a device starts with; `slow_down` adds 5 s (RFC 8628 §3.5).
pub const POLL_INTERVAL_SECS: i64 = 5;
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §6.1: 20 consonants, no vowels (no words), no look-alikes; 8 characters
/// (20^8 ≈ 2^34.6) shown as two groups of four joined by a dash.
pub const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceState {
    Pending,
    Approved { account_id: AccountId, gid: GrantId },
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub client_id: ClientId,
    pub scope: String,
    /// The user code as shown (two groups of four letters joined by a dash).
    pub user_code: String,
    pub created_at: i64,
    /// The address the device asked from, shown on the approval page beside the time, so a
    /// person can tell a request they did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_from: Option<String>,
    pub expires_at: i64,
    pub interval: i64,
    #[serde(default)]
    pub last_poll_at: Option<i64>,
    pub state: DeviceState,
    #[serde(skip)]
    pub version: i64,
    /// The hash the record is stored under (not part of the body).
    #[serde(skip)]
    pub device_hash: String,
}

impl DeviceRequest {
    /// Whether the request asks for the scope that acts as the whole account (`global`): its
    /// code must be typed by the person, never filled in by a link (a phishing mail cannot
    /// carry the approval).
    pub fn needs_typed_code(&self) -> bool {
        self.scope.split(' ').any(|s| s == "global")
    }
}
crate::versioned!(DeviceRequest);

/// What a poll comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Not answered yet; this poll is recorded.
    Pending,
    /// Polled within the interval (or beside another poll): the interval grows by 5 s.
    SlowDown,
    Denied,
    Expired,
    /// Unknown device code, another client's, or already exchanged.
    Invalid,
    /// Approved, but the grant it was approved on is no longer live or not this client's:
    /// spent all the same (a revoked authorization is not asked about again).
    Revoked,
    /// Approved: the request is spent in the write that stores the refresh token, so it is
    /// spent if and only if tokens exist; of concurrent polls, exactly one is issued.
    Issued(Box<Issued>),
}

/// What is loaded for a poll.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The request under the device code's hash (expired ones included: `expired_token`).
    pub request: Option<DeviceRequest>,
    /// For an approved request, the grant it was approved on.
    pub grant: Option<Grant>,
}

pub fn device_pk(hash: &str) -> String {
    format!("device#{hash}")
}

/// A typed user code with dashes and spaces dropped and letters upper-cased; `None` when it
/// cannot be one of ours.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

/// The rule of a poll (RFC 8628 §3.4, §3.5), as a plan: another client's or an unknown code
/// is invalid; past its expiry it is expired; denied is denied; approved is spent once, in
/// the write that stores the refresh token (`fresh_hash`); pending is paced: polling again
/// within the interval is `slow_down`, and the interval grows by 5 seconds each time.
pub fn poll(
    loaded: Loaded,
    client_id: &str,
    fresh_hash: &str,
    now: i64,
) -> Result<Plan<Polled>, StoreError> {
    let Some(current) = loaded.request else {
        return Ok(Plan::answer(Polled::Invalid));
    };
    if !same(&current.client_id, client_id) {
        return Ok(Plan::answer(Polled::Invalid));
    }
    if current.expires_at <= now {
        return Ok(Plan::answer(Polled::Expired));
    }
    match &current.state {
        DeviceState::Denied => Ok(Plan::answer(Polled::Denied)),
        DeviceState::Approved { account_id, gid } => {
            let take = Op::Delete {
                table: Table::OAuth,
                pk: device_pk(&current.device_hash),
                sk: "device".into(),
                cond: Cond::Version(current.version),
            };
            let grant = match loaded.grant {
                Some(g) if g.gid == *gid && g.serves(client_id) => g,
                _ => return Ok(Plan::write(vec![take], Polled::Revoked)),
            };
            let scopes = Scopes::parse(&current.scope)
                .map_err(|e| StoreError::Corrupt(format!("device request scope: {e}")))?;
            let (refresh, put_refresh) =
                refresh::issue(&grant, &scopes, now, Some(now), fresh_hash)?;
            let issue = Issue {
                account_id: account_id.clone(),
                grant,
                scopes,
            };
            Ok(Plan::write(
                vec![take, put_refresh],
                Polled::Issued(Box::new(Issued { issue, refresh })),
            ))
        }
        DeviceState::Pending => {
            let slow_down = current
                .last_poll_at
                .is_some_and(|last| now - last < current.interval);
            let mut next = current.clone();
            next.last_poll_at = Some(now);
            if slow_down {
                next.interval += 5;
            }
            next.version = current.version + 1;
            let item = Item::new(device_pk(&current.device_hash), "device", &next)?
                .with_version(next.version)
                .expiring(current.expires_at + KEPT_AFTER_EXPIRY_SECS);
            let pace = Op::Put {
                table: Table::OAuth,
                item,
                cond: Cond::Version(current.version),
            };
            let outcome = if slow_down {
                Polled::SlowDown
            } else {
                Polled::Pending
            };
            Ok(Plan::write(vec![pace], outcome))
        }
    }
}

/// A user code's pointer to its request: `user-code#{normalized}` / `user-code`.
pub fn user_code_pk(normalized: &str) -> String {
    format!("user-code#{normalized}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserCodePointer {
    pub device_hash: String,
}

/// The writes a new request makes (its device code's hash and user code drawn by the
/// caller): the request and its user code's pointer, each refused if one lives (a user-code
/// collision: the caller draws again).
pub fn start(
    client_id: &str,
    scope: &str,
    started_from: Option<String>,
    drawn: (&str, &str),
    now: i64,
) -> Result<Plan<DeviceRequest>, StoreError> {
    let (device_hash, user_code) = drawn;
    let normalized = normalize_user_code(user_code)
        .ok_or_else(|| StoreError::Corrupt("a drawn user code is not of the alphabet".into()))?;
    let request = DeviceRequest {
        client_id: client_id.into(),
        scope: scope.to_string(),
        user_code: user_code.to_string(),
        created_at: now,
        started_from,
        expires_at: now + DEVICE_TTL_SECS,
        interval: POLL_INTERVAL_SECS,
        last_poll_at: None,
        state: DeviceState::Pending,
        version: 1,
        device_hash: device_hash.to_string(),
    };
    let ops = vec![
        Op::Put {
            table: Table::OAuth,
            item: Item::new(device_pk(device_hash), "device", &request)?
                .expiring(request.expires_at + KEPT_AFTER_EXPIRY_SECS),
            cond: Cond::Absent,
        },
        Op::Put {
            table: Table::OAuth,
            item: Item::new(
                user_code_pk(&normalized),
                "user-code",
                &UserCodePointer {
                    device_hash: device_hash.to_string(),
                },
            )?
            .expiring(request.expires_at),
            cond: Cond::Absent,
        },
    ];
    Ok(Plan::write(ops, request))
}

/// The person's answer (approve or deny) to the request as loaded: only a pending,
/// unexpired request is answered, once (at the version read); `false` otherwise.
pub fn answer(
    current: Option<DeviceRequest>,
    state: DeviceState,
    now: i64,
) -> Result<Plan<bool>, StoreError> {
    let Some(current) = current else {
        return Ok(Plan::answer(false));
    };
    if current.state != DeviceState::Pending || current.expires_at <= now {
        return Ok(Plan::answer(false));
    }
    let mut next = current.clone();
    next.state = state;
    next.version = current.version + 1;
    let item = Item::new(device_pk(&current.device_hash), "device", &next)?
        .with_version(next.version)
        .expiring(current.expires_at + KEPT_AFTER_EXPIRY_SECS);
    Ok(Plan::write(
        vec![Op::Put {
            table: Table::OAuth,
            item,
            cond: Cond::Version(current.version),
        }],
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(state: DeviceState, last_poll_at: Option<i64>) -> DeviceRequest {
        DeviceRequest {
            client_id: "cli".into(),
            scope: "identity".into(),
            user_code: "BCDF-GHJK".into(),
            created_at: 0,
            started_from: None,
            expires_at: DEVICE_TTL_SECS,
            interval: POLL_INTERVAL_SECS,
            last_poll_at,
            state,
            version: 3,
            device_hash: "h".into(),
        }
    }

    fn loaded(r: DeviceRequest) -> Loaded {
        Loaded {
            request: Some(r),
            grant: Some(Grant {
                gid: "g".into(),
                client_id: "cli".into(),
                account_id: "a".into(),
                scope: "identity".into(),
                created_at: 0,
                updated_at: 0,
                revoked_at: None,
                version: 1,
            }),
        }
    }

    fn answer(r: DeviceRequest, client_id: &str, now: i64) -> Polled {
        let plan = poll(loaded(r), client_id, "fresh", now).unwrap();
        assert!(plan.ops.is_empty(), "{:?}", plan.ops);
        plan.outcome
    }

    #[test]
    fn an_unknown_code_or_another_clients_is_invalid() {
        assert_eq!(
            poll(Loaded::default(), "cli", "f", 10).unwrap(),
            Plan::answer(Polled::Invalid)
        );
        let r = request(DeviceState::Pending, None);
        assert_eq!(answer(r, "other", 10), Polled::Invalid);
    }

    fn approved() -> DeviceState {
        DeviceState::Approved {
            account_id: "a".into(),
            gid: "g".into(),
        }
    }

    #[test]
    fn a_request_past_its_expiry_is_expired_whatever_its_state() {
        for state in [DeviceState::Pending, DeviceState::Denied, approved()] {
            let r = request(state, None);
            assert_eq!(answer(r, "cli", DEVICE_TTL_SECS), Polled::Expired);
        }
    }

    #[test]
    fn a_denied_request_is_denied() {
        let r = request(DeviceState::Denied, None);
        assert_eq!(answer(r, "cli", 10), Polled::Denied);
    }

    #[test]
    fn an_approved_request_is_spent_by_one_versioned_delete_in_the_write_that_stores_its_refresh_token()
     {
        let plan = poll(loaded(request(approved(), None)), "cli", "fresh", 10).unwrap();
        let Polled::Issued(issued) = &plan.outcome else {
            panic!("{:?}", plan.outcome)
        };
        assert_eq!(issued.issue.account_id, "a");
        assert_eq!(issued.refresh.auth_time, Some(10));
        let [Op::Delete { pk, cond, .. }, Op::Put { item, .. }] = plan.ops.as_slice() else {
            panic!("{:?}", plan.ops)
        };
        assert_eq!((pk.as_str(), *cond), ("device#h", Cond::Version(3)));
        assert_eq!(item.pk, "refresh#fresh");
    }

    #[test]
    fn an_approval_whose_grant_was_revoked_is_spent_alone() {
        let mut l = loaded(request(approved(), None));
        l.grant.as_mut().unwrap().revoked_at = Some(5);
        let plan = poll(l, "cli", "fresh", 10).unwrap();
        assert_eq!(plan.outcome, Polled::Revoked);
        assert!(matches!(plan.ops.as_slice(), [Op::Delete { .. }]));
    }

    #[test]
    fn polling_within_the_interval_slows_down_by_five_seconds() {
        let r = request(DeviceState::Pending, Some(100));
        let plan = poll(loaded(r.clone()), "cli", "f", 104).unwrap();
        assert_eq!(plan.outcome, Polled::SlowDown);
        let [Op::Put { item, cond, .. }] = plan.ops.as_slice() else {
            panic!("put")
        };
        assert_eq!(*cond, Cond::Version(3));
        let next: DeviceRequest = item.parse().unwrap();
        assert_eq!(next.interval, POLL_INTERVAL_SECS + 5);
        assert_eq!(next.last_poll_at, Some(104));
        let on_time = poll(loaded(r), "cli", "f", 105).unwrap();
        assert_eq!(
            on_time.outcome,
            Polled::Pending,
            "a poll after the interval is on time"
        );
    }

    #[test]
    fn a_request_is_answered_once_while_pending_and_unexpired() {
        let plan =
            super::answer(Some(request(DeviceState::Pending, None)), approved(), 10).unwrap();
        assert!(plan.outcome);
        assert!(matches!(
            plan.ops.as_slice(),
            [Op::Put {
                cond: Cond::Version(3),
                ..
            }]
        ));
        for (state, now) in [
            (DeviceState::Denied, 10),
            (DeviceState::Pending, DEVICE_TTL_SECS),
        ] {
            let plan = super::answer(Some(request(state, None)), approved(), now).unwrap();
            assert_eq!(plan, Plan::answer(false));
        }
        assert_eq!(
            super::answer(None, approved(), 1).unwrap(),
            Plan::answer(false)
        );
    }

    #[test]
    fn a_new_request_and_its_user_code_are_each_refused_if_one_lives() {
        let plan = start("cli", "identity", None, ("h", "BCDF-GHJK"), 7).unwrap();
        assert_eq!(plan.outcome.expires_at, 7 + DEVICE_TTL_SECS);
        let [
            Op::Put {
                item: r,
                cond: Cond::Absent,
                ..
            },
            Op::Put {
                item: u,
                cond: Cond::Absent,
                ..
            },
        ] = plan.ops.as_slice()
        else {
            panic!("{:?}", plan.ops)
        };
        assert_eq!(
            (r.pk.as_str(), u.pk.as_str()),
            ("device#h", "user-code#BCDFGHJK")
        );
    }

    #[test]
    fn user_codes_are_eight_of_the_alphabet_dashes_and_spaces_aside() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code("BCDF GHJK").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code("ABCD-EFGH"),
            None,
            "vowels never appear"
        );
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
    }
}
