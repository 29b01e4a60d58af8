//! The audit log of "log in as" (impersonation): who acted as whom, when, why, and what
//! they did, one entry per request of an impersonation session and one for its start.
//! `identity admin audit` lists it newest first.
//!
//! Entries live a year in the login-history table, one partition per month
//! (`audit#YYYY-MM`), sorted by time; an entry must be written before the request it
//! records runs (no unaudited action).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::{Cond, Item, Op, Store, StoreError, Table};

/// How long entries are kept.
pub const AUDIT_RETENTION_SECS: i64 = 366 * 24 * 60 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: i64,
    /// The operator who signed in as the account.
    pub by: String,
    /// The account acted as.
    pub account_id: String,
    pub email: String,
    pub reason: String,
    /// What was done: `impersonation started`, or `METHOD /route/{template}` (never a raw
    /// path: paths can carry single-use tokens).
    pub action: String,
}

impl AuditEntry {
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "at": crate::clock::rfc3339(self.at),
            "by": self.by,
            "as": self.email,
            "account_id": self.account_id,
            "reason": self.reason,
            "action": self.action,
        })
    }
}

fn month_pk(at: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("audit#{:04}-{:02}", t.year(), u8::from(t.month()))
}

#[async_trait]
pub trait Audit {
    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// At most `limit` entries, newest first (the last twelve months).
    async fn audit_entries(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

#[async_trait]
impl Audit for Store {
    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let sk = format!(
            "{:012}#{}",
            entry.at,
            hex::encode(crate::crypto::random_bytes(6))
        );
        let item =
            Item::new(month_pk(entry.at), sk, entry)?.expiring(entry.at + AUDIT_RETENTION_SECS);
        self.write(vec![Op::Put {
            table: Table::LoginHistory,
            item,
            cond: Cond::Absent,
        }])
        .await
    }

    async fn audit_entries(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        let mut at = self.now();
        for _ in 0..12 {
            if out.len() >= limit {
                break;
            }
            let page: Vec<AuditEntry> = self
                .query_newest(Table::LoginHistory, &month_pk(at), "", limit - out.len())
                .await?;
            out.extend(page);
            // Some day of the month before.
            let t = time::OffsetDateTime::from_unix_timestamp(at)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            at -= i64::from(t.day()) * 24 * 60 * 60;
        }
        Ok(out)
    }
}

/// How long a "log in as" link lasts.
pub const IMPERSONATION_LINK_SECS: i64 = 5 * 60;
const LINK_KIND: &str = "impersonate";

/// What a "log in as" link lets its holder do: sign in as the account, marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpersonationLink {
    pub account_id: String,
    pub by: String,
    pub reason: String,
}

fn link_key(token: &crate::secret::SecretString) -> String {
    crate::crypto::sha256_hex(token.expose_secret().as_bytes())
}

#[async_trait]
pub trait Impersonations {
    /// A single-use link token for `link`, valid five minutes (only its hash is kept).
    async fn issue_impersonation(
        &self,
        link: &ImpersonationLink,
    ) -> Result<crate::secret::SecretString, StoreError>;
    /// Whether the token is live (the confirmation page; nothing consumed).
    async fn impersonation_pending(
        &self,
        token: &crate::secret::SecretString,
    ) -> Result<Option<ImpersonationLink>, StoreError>;
    /// Consumes the token: the link for exactly one caller.
    async fn take_impersonation(
        &self,
        token: &crate::secret::SecretString,
    ) -> Result<Option<ImpersonationLink>, StoreError>;
}

#[async_trait]
impl Impersonations for Store {
    async fn issue_impersonation(
        &self,
        link: &ImpersonationLink,
    ) -> Result<crate::secret::SecretString, StoreError> {
        use crate::store::SingleUse;
        let token = crate::crypto::random_token();
        let body = serde_json::to_value(link)
            .map_err(|e| crate::store::serde_failure("impersonation link", &e))?;
        self.put_single_use(
            LINK_KIND,
            &link_key(&token),
            &body,
            self.now() + IMPERSONATION_LINK_SECS,
        )
        .await?;
        Ok(token)
    }

    async fn impersonation_pending(
        &self,
        token: &crate::secret::SecretString,
    ) -> Result<Option<ImpersonationLink>, StoreError> {
        self.get(
            Table::Once,
            &format!("{LINK_KIND}#{}", link_key(token)),
            "once",
        )
        .await
    }

    async fn take_impersonation(
        &self,
        token: &crate::secret::SecretString,
    ) -> Result<Option<ImpersonationLink>, StoreError> {
        use crate::store::SingleUse;
        self.take_single_use(LINK_KIND, &link_key(token))
            .await?
            .map(|v| {
                serde_json::from_value(v)
                    .map_err(|e| crate::store::serde_failure("impersonation link", &e))
            })
            .transpose()
    }
}
