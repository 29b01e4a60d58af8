//! The outbox: messages for people (welcome links, password-reset links), written in the
//! same atomic write as the change they announce, kept in the history table under
//! `outbox#{to}` / `{created_at:012}#{suffix}` for [`OUTBOX_TTL_SECS`]. Bodies carry live
//! links, so they are stored sealed (`identity-shared` seals them with the cookie keys).

use serde::{Deserialize, Serialize};

use crate::digest::Sealed;
use crate::store::{Cond, Item, Op, StoreError, Table};

/// How long outbox messages are kept.
pub const OUTBOX_TTL_SECS: i64 = 7 * 24 * 3600;

/// A message for a person. The body is sealed (and prints as `[redacted]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub to: String,
    pub subject: String,
    pub body_sealed: Sealed,
    pub created_at: i64,
}

/// The associated data a body is sealed under: its recipient.
pub fn aad(to: &str) -> Vec<u8> {
    format!("outbox:{to}").into_bytes()
}

pub fn outbox_pk(to: &str) -> String {
    format!("outbox#{to}")
}

/// The write that puts `message` in the outbox; `suffix` (random, made by the caller) keeps
/// two messages of one second apart.
pub fn put(message: &OutboxMessage, suffix: &str) -> Result<Op, StoreError> {
    Ok(Op::Put {
        table: Table::LoginHistory,
        item: Item::new(
            outbox_pk(&message.to),
            format!("{:012}#{suffix}", message.created_at),
            message,
        )?
        .expiring(message.created_at + OUTBOX_TTL_SECS),
        cond: Cond::Absent,
    })
}
