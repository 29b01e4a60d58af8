//! The device authorization grant's records (RFC 8628) and its poll as a rule: given the
//! stored request (or none), the polling client and `now`, what the poll answers and the
//! one conditional write that goes with it.

use serde::{Deserialize, Serialize};

use crate::digest::same;
use crate::ids::{AccountId, ClientId, GrantId};
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

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    Pending,
    SlowDown,
    Denied,
    Expired,
    /// Unknown device code, or another client's.
    Invalid,
    /// Approved. `take` spends the request: in the write that records the tokens, so the
    /// request is spent if and only if they exist; of concurrent writes carrying it, exactly
    /// one succeeds.
    Approved {
        account_id: AccountId,
        gid: GrantId,
        scope: String,
        take: Box<Op>,
    },
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

/// What a poll comes to before the store has its say.
#[derive(Debug, Clone)]
pub enum PollDecision {
    /// The answer, with nothing to write now (an approval carries the write that spends it).
    Answer(Poll),
    /// Pending: record this poll (and the slower pace when `slow_down`) under the record's
    /// version; a lost race means another poll came at the same time, which is too fast.
    Pace { op: Op, slow_down: bool },
}

/// The rule of a poll (RFC 8628 §3.4, §3.5): another client's or an unknown code is
/// invalid; past its expiry it is expired; denied is denied; approved is taken once (by the
/// write that records the tokens);
/// pending is paced: polling again within the interval is `slow_down`, and the interval
/// grows by 5 seconds each time.
pub fn poll(
    current: Option<&DeviceRequest>,
    client_id: &str,
    now: i64,
) -> Result<PollDecision, StoreError> {
    let Some(current) = current else {
        return Ok(PollDecision::Answer(Poll::Invalid));
    };
    if !same(&current.client_id, client_id) {
        return Ok(PollDecision::Answer(Poll::Invalid));
    }
    if current.expires_at <= now {
        return Ok(PollDecision::Answer(Poll::Expired));
    }
    match &current.state {
        DeviceState::Denied => Ok(PollDecision::Answer(Poll::Denied)),
        DeviceState::Approved { account_id, gid } => Ok(PollDecision::Answer(Poll::Approved {
            account_id: account_id.clone(),
            gid: gid.clone(),
            scope: current.scope.clone(),
            take: Box::new(Op::Delete {
                table: Table::OAuth,
                pk: device_pk(&current.device_hash),
                sk: "device".into(),
                cond: Cond::Version(current.version),
            }),
        })),
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
            Ok(PollDecision::Pace {
                op: Op::Put {
                    table: Table::OAuth,
                    item,
                    cond: Cond::Version(current.version),
                },
                slow_down,
            })
        }
    }
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

    fn answer(d: PollDecision) -> Poll {
        match d {
            PollDecision::Answer(p) => p,
            other => panic!("an answer, not {other:?}"),
        }
    }

    #[test]
    fn an_unknown_code_or_another_clients_is_invalid() {
        assert_eq!(answer(poll(None, "cli", 10).unwrap()), Poll::Invalid);
        let r = request(DeviceState::Pending, None);
        assert_eq!(answer(poll(Some(&r), "other", 10).unwrap()), Poll::Invalid);
    }

    #[test]
    fn a_request_past_its_expiry_is_expired_whatever_its_state() {
        let approved = DeviceState::Approved {
            account_id: "a".into(),
            gid: "g".into(),
        };
        for state in [DeviceState::Pending, DeviceState::Denied, approved] {
            let r = request(state, None);
            assert_eq!(
                answer(poll(Some(&r), "cli", DEVICE_TTL_SECS).unwrap()),
                Poll::Expired
            );
        }
    }

    #[test]
    fn a_denied_request_is_denied() {
        let r = request(DeviceState::Denied, None);
        assert_eq!(answer(poll(Some(&r), "cli", 10).unwrap()), Poll::Denied);
    }

    #[test]
    fn an_approved_request_is_taken_by_one_versioned_delete() {
        let r = request(
            DeviceState::Approved {
                account_id: "a".into(),
                gid: "g".into(),
            },
            None,
        );
        let PollDecision::Answer(Poll::Approved {
            account_id,
            gid,
            scope,
            take,
        }) = poll(Some(&r), "cli", 10).unwrap()
        else {
            panic!("approved")
        };
        assert!(
            matches!(*take, Op::Delete { cond: Cond::Version(3), ref pk, .. } if pk == "device#h")
        );
        assert_eq!(
            (account_id, gid, scope),
            ("a".into(), "g".into(), "identity".to_string())
        );
    }

    #[test]
    fn polling_within_the_interval_slows_down_by_five_seconds() {
        let r = request(DeviceState::Pending, Some(100));
        let PollDecision::Pace { op, slow_down } = poll(Some(&r), "cli", 104).unwrap() else {
            panic!("pace")
        };
        assert!(slow_down);
        let Op::Put { item, cond, .. } = op else {
            panic!("put")
        };
        assert_eq!(cond, Cond::Version(3));
        let next: DeviceRequest = item.parse().unwrap();
        assert_eq!(next.interval, POLL_INTERVAL_SECS + 5);
        assert_eq!(next.last_poll_at, Some(104));
        let PollDecision::Pace { slow_down, .. } = poll(Some(&r), "cli", 105).unwrap() else {
            panic!("pace")
        };
        assert!(!slow_down, "a poll after the interval is on time");
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
