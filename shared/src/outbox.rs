//! The outbox: messages for people (welcome links, password-reset links), written in the
//! same atomic write as the change they announce, then handed to an [`EmailSender`].
//! Bodies carry live links, so they are kept sealed with the cookie keys; the operator
//! reads them with `identity admin outbox`.

use async_trait::async_trait;
use identity_core::outbox;

use crate::accounts::Email;
use crate::secret::SecretString;
use crate::secrets::CookieKeys;
use crate::store::{Store, StoreError, Table};

/// How long outbox messages are kept.
pub use identity_core::outbox::{OUTBOX_TTL_SECS, OutboxMessage};

/// Opens an outbox message's sealed body.
pub trait SealedBody {
    /// The body, for the operator's `identity admin outbox` or a real sender.
    fn body(&self, keys: &CookieKeys) -> Option<SecretString>;
}

impl SealedBody for OutboxMessage {
    fn body(&self, keys: &CookieKeys) -> Option<SecretString> {
        let plain = keys.open(&self.body_sealed, &outbox::aad(&self.to))?;
        String::from_utf8(plain).ok().map(SecretString::new)
    }
}

/// Delivers outbox messages. The default only logs that a message is waiting (never its
/// body); a deployment plugs in its mail service here.
#[async_trait]
pub trait EmailSender: Send + Sync + std::fmt::Debug {
    async fn send(&self, message: &OutboxMessage) -> Result<(), String>;
}

/// Logs "message waiting in the outbox" with the recipient's domain and the subject.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoggingSender;

#[async_trait]
impl EmailSender for LoggingSender {
    async fn send(&self, message: &OutboxMessage) -> Result<(), String> {
        let domain = message.to.rsplit('@').next().unwrap_or("");
        tracing::info!(
            to_domain = domain,
            subject = %message.subject,
            "message waiting in the outbox (`identity admin outbox` shows it)"
        );
        Ok(())
    }
}

/// A message for `to`, its body sealed with the cookie keys (it carries a live link).
pub fn sealed(to: &str, subject: &str, body: &str, keys: &CookieKeys, now: i64) -> OutboxMessage {
    OutboxMessage {
        to: to.to_string(),
        subject: subject.to_string(),
        body_sealed: keys.seal(body.as_bytes(), &outbox::aad(to)).into(),
        created_at: now,
    }
}

/// The most messages one address's listing reads.
pub const PAGE: usize = 50;

#[async_trait]
pub trait Outbox {
    /// Outbox messages, newest first; to one address: its newest [`PAGE`] at most (a bounded
    /// read, never the whole partition); with no address: every message (operators only).
    async fn outbox(&self, to: Option<&Email>) -> Result<Vec<OutboxMessage>, StoreError>;
}

#[async_trait]
impl Outbox for Store {
    async fn outbox(&self, to: Option<&Email>) -> Result<Vec<OutboxMessage>, StoreError> {
        let items = match to {
            Some(email) => {
                self.backend()
                    .query_newest(
                        Table::LoginHistory,
                        &outbox::outbox_pk(email.as_str()),
                        "",
                        PAGE,
                        self.now(),
                    )
                    .await?
            }
            None => self.backend().scan(Table::LoginHistory, self.now()).await?,
        };
        let mut out = items
            .iter()
            .filter(|i| i.pk.starts_with("outbox#"))
            .map(|i| i.parse::<OutboxMessage>())
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|m| std::cmp::Reverse(m.created_at));
        Ok(out)
    }
}

/// How many messages with one of `subjects` went to `to` in the last `window_secs`: for
/// the per-address limits that keep the outbox from being filled by strangers.
pub async fn recent_count(
    store: &Store,
    to: &Email,
    subjects: &[&str],
    window_secs: i64,
) -> Result<usize, StoreError> {
    let since = store.now() - window_secs;
    Ok(store
        .outbox(Some(to))
        .await?
        .iter()
        .filter(|m| m.created_at > since && subjects.contains(&m.subject.as_str()))
        .count())
}

/// Hands the newest message to `to` to the sender; a failure is logged, not fatal (the
/// message stays in the outbox).
pub async fn deliver_newest(store: &Store, sender: &dyn EmailSender, to: &Email) {
    match store.outbox(Some(to)).await {
        Ok(messages) => {
            if let Some(m) = messages.first()
                && let Err(e) = sender.send(m).await
            {
                tracing::warn!(error = %e, "message not handed to the sender");
            }
        }
        Err(e) => tracing::warn!(error = %e, "outbox read failed"),
    }
}
