//! The audit log of "log in as" (impersonation): who acted as whom, when, why, and what
//! they did, one entry per request of an impersonation session and one for its start.
//! `identity admin audit` lists it newest first.
//!
//! Entries live a year in the login-history table, one partition per month
//! (`audit#YYYY-MM`), sorted by time; an entry must be written before the request it
//! records runs (no unaudited action).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::{Item, Store, StoreError, Table, record};

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
    /// Who made the link, as the store knew them (not what `--by` said): the AWS identity
    /// the `identity admin` call ran as, or the local user of an embedded store.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operator: String,
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
            "operator": self.operator,
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
        self.write(vec![record::create(Table::LoginHistory, item)])
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
    /// Who the operator says they are (`--by`, shown in the banner).
    pub by: String,
    pub reason: String,
    /// Who made the link as the store knew them (see [`AuditEntry::operator`]).
    #[serde(default)]
    pub operator: String,
}

/// The stored link: with the hash of the code printed beside it, which the page asks for.
#[derive(Serialize, Deserialize)]
struct StoredLink {
    #[serde(flatten)]
    link: ImpersonationLink,
    code_sha256: String,
}

fn link_key(token: &crate::secret::SecretString) -> String {
    crate::crypto::sha256_hex(token.expose_secret().as_bytes())
}

/// The code's hash as stored: of its normalized form (`BCDF-GHJK`, `bcdf ghjk`: one code).
fn code_key(code: &str) -> Option<String> {
    identity_core::device::normalize_user_code(code)
        .map(|n| crate::crypto::sha256_hex(n.as_bytes()))
}

/// A "log in as" link as it is handed out: the URL's token and the code the operator types
/// on its page (printed apart, so the URL alone, seen in a chat, a proxy log or by a link
/// scanner, signs nobody in).
pub struct IssuedLink {
    pub token: crate::secret::SecretString,
    pub code: crate::secret::SecretString,
}

#[async_trait]
pub trait Impersonations {
    /// A single-use link token and its code for `link`, valid five minutes (only their
    /// hashes are kept).
    async fn issue_impersonation(&self, link: &ImpersonationLink)
    -> Result<IssuedLink, StoreError>;
    /// Whether the token is live (the confirmation page; nothing consumed).
    async fn impersonation_pending(
        &self,
        token: &crate::secret::SecretString,
    ) -> Result<Option<ImpersonationLink>, StoreError>;
    /// Consumes the token (for exactly one caller) and gives its link when `code` is the
    /// link's code. A wrong code spends the link all the same: `None`, as for a link used,
    /// expired or unknown.
    async fn take_impersonation(
        &self,
        token: &crate::secret::SecretString,
        code: &str,
    ) -> Result<Option<ImpersonationLink>, StoreError>;
}

#[async_trait]
impl Impersonations for Store {
    async fn issue_impersonation(
        &self,
        link: &ImpersonationLink,
    ) -> Result<IssuedLink, StoreError> {
        use crate::store::SingleUse;
        let token = crate::crypto::random_token();
        let code = crate::oauth::device::new_user_code();
        let stored = StoredLink {
            link: link.clone(),
            code_sha256: code_key(&code).expect("our own code"),
        };
        let body = serde_json::to_value(&stored)
            .map_err(|e| crate::store::serde_failure("impersonation link", &e))?;
        self.put_single_use(
            LINK_KIND,
            &link_key(&token),
            &body,
            self.now() + IMPERSONATION_LINK_SECS,
        )
        .await?;
        Ok(IssuedLink {
            token,
            code: crate::secret::SecretString::new(code),
        })
    }

    async fn impersonation_pending(
        &self,
        token: &crate::secret::SecretString,
    ) -> Result<Option<ImpersonationLink>, StoreError> {
        Ok(self
            .get::<StoredLink>(
                Table::Once,
                &format!("{LINK_KIND}#{}", link_key(token)),
                "once",
            )
            .await?
            .map(|s| s.link))
    }

    async fn take_impersonation(
        &self,
        token: &crate::secret::SecretString,
        code: &str,
    ) -> Result<Option<ImpersonationLink>, StoreError> {
        use crate::store::SingleUse;
        let Some(value) = self.take_single_use(LINK_KIND, &link_key(token)).await? else {
            return Ok(None);
        };
        let stored: StoredLink = serde_json::from_value(value)
            .map_err(|e| crate::store::serde_failure("impersonation link", &e))?;
        let typed = code_key(code).unwrap_or_default();
        if !identity_core::digest::same(&stored.code_sha256, &typed) {
            tracing::warn!("log-in-as link spent with a wrong code");
            return Ok(None);
        }
        Ok(Some(stored.link))
    }
}
