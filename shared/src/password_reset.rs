//! Password reset through a single-use link, for accounts not under SSO. Asking for a link
//! answers the same whether or not the account exists; the link (a random token, stored
//! only as its hash) lives one hour and works once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::accounts::{self, Account, AccountError, Accounts, Email};
use crate::crypto;
use crate::oauth::grant::Grants;
use crate::outbox;
use crate::secret::SecretString;
use crate::secrets::CookieKeys;
use crate::store::{Cond, Consumed, Item, Op, Store, StoreError, Table};

pub const RESET_TTL_SECS: i64 = 3600;
/// At most this many password messages to one address per hour; further requests are
/// answered the same way and send nothing, so strangers cannot fill anyone's outbox.
pub const MAX_RESET_MESSAGES_PER_HOUR: usize = 3;
const RESET_SUBJECTS: &[&str] = &["Reset your password", "Your password"];
/// Shortest password accepted (NIST SP 800-63B asks for at least 8; we ask for more).
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

fn reset_pk(token: &SecretString) -> String {
    format!(
        "password-reset#{}",
        crypto::sha256_hex(token.expose_secret().as_bytes())
    )
}

#[derive(Serialize, Deserialize)]
struct ResetRecord {
    account_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("passwords are {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("the account signs in through single sign-on")]
    UnderSso,
    #[error("the account changed meanwhile; try again")]
    Changed,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn acceptable_password(p: &SecretString) -> bool {
    let n = p.expose_secret().chars().count();
    (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n)
}

#[async_trait]
pub trait PasswordResets {
    /// Puts a message for `email` in the outbox: a reset link when the account exists and
    /// is not under SSO, a note that the organisation signs them in when it is; nothing
    /// for an unknown email. The caller answers the same in every case.
    async fn request_password_reset(
        &self,
        email: &Email,
        link_base: &str,
        keys: &CookieKeys,
    ) -> Result<bool, StoreError>;
    /// Is the link still good? (read only)
    async fn reset_pending(&self, token: &SecretString) -> Result<bool, StoreError>;
    /// Consumes the link and sets the new password, in one write. `None`: unknown, expired
    /// or used link.
    async fn reset_password(
        &self,
        token: &SecretString,
        new_password: &SecretString,
    ) -> Result<Option<Account>, ResetError>;
}

/// The write an unanswered request makes instead of a link and its message: two records
/// under random keys that nobody holds, gone with the link's lifetime.
fn decoy_ops(now: i64) -> Result<Vec<Op>, StoreError> {
    (0..2)
        .map(|_| {
            Ok(Op::Put {
                table: Table::Once,
                item: Item::new(
                    format!("decoy#{}", crypto::random_token().expose_secret()),
                    "once",
                    &serde_json::json!({}),
                )?
                .expiring(now + RESET_TTL_SECS),
                cond: Cond::Absent,
            })
        })
        .collect()
}

#[async_trait]
impl PasswordResets for Store {
    async fn request_password_reset(
        &self,
        email: &Email,
        link_base: &str,
        keys: &CookieKeys,
    ) -> Result<bool, StoreError> {
        let account = match self.account_by_email(email).await {
            Ok(a) => a,
            Err(AccountError::Store(e)) => return Err(e),
            Err(e) => return Err(StoreError::Corrupt(e.to_string())),
        };
        let now = self.now();
        // Known or not, the email's outbox is read and one write is made, so the answer's
        // timing does not tell whether the account exists.
        let recent = outbox::recent_count(self, email, RESET_SUBJECTS, 3600).await?;
        let Some(account) = account else {
            self.write(decoy_ops(now)?).await?;
            return Ok(false);
        };
        if recent >= MAX_RESET_MESSAGES_PER_HOUR {
            tracing::info!("password reset: the address's hourly limit is reached; nothing sent");
            self.write(decoy_ops(now)?).await?;
            return Ok(false);
        }
        let ops = if account.sso_idp.is_some() {
            vec![outbox::message_op(
                &account.email,
                "Your password",
                "Someone asked to reset the password of this account. Your organisation signs \
                 you in through single sign-on, so the account has no password: sign in through \
                 your organisation instead.\n",
                keys,
                now,
            )?]
        } else {
            let token = crypto::random_token();
            let body = format!(
                "Someone asked to reset the password of {email}. Follow this link within an hour \
                 to choose a new one:\n\n{link_base}{token}\n\nIf it was not you, ignore this \
                 message: nothing changes until the link is used.\n",
                email = account.email,
                token = token.expose_secret()
            );
            vec![
                Op::Put {
                    table: Table::Once,
                    item: Item::new(
                        reset_pk(&token),
                        "once",
                        &ResetRecord {
                            account_id: account.id.to_string(),
                        },
                    )?
                    .expiring(now + RESET_TTL_SECS),
                    cond: Cond::Absent,
                },
                outbox::message_op(&account.email, "Reset your password", &body, keys, now)?,
            ]
        };
        self.write(ops).await?;
        Ok(true)
    }

    async fn reset_pending(&self, token: &SecretString) -> Result<bool, StoreError> {
        Ok(self
            .get_item(Table::Once, &reset_pk(token), "once")
            .await?
            .is_some())
    }

    async fn reset_password(
        &self,
        token: &SecretString,
        new_password: &SecretString,
    ) -> Result<Option<Account>, ResetError> {
        if !acceptable_password(new_password) {
            return Err(ResetError::WeakPassword);
        }
        let pk = reset_pk(token);
        let Some(record) = self.get::<ResetRecord>(Table::Once, &pk, "once").await? else {
            return Ok(None);
        };
        let Some(account) = self.account(&record.account_id).await? else {
            return Ok(None);
        };
        if account.sso_idp.is_some() {
            return Err(ResetError::UnderSso);
        }
        // Whoever knew the old password may hold sessions and tokens: the grants go first
        // (their refresh tokens with them), the sessions end with the new password.
        self.revoke_grants_of(&account.id).await?;
        let mut next = account.clone();
        next.password_hash = Some(identity_core::digest::Digest::new(
            crypto::hash_password(new_password).map_err(AccountError::from)?,
        ));
        next.end_all_sessions();
        next.end_api_keys();
        let (op, next) = accounts::update_op(&next)?;
        match self
            .consume_with(Table::Once, &pk, "once", vec![op])
            .await?
        {
            Consumed::Done => Ok(Some(next)),
            Consumed::Gone => Ok(None),
            Consumed::Conflict => Err(ResetError::Changed),
        }
    }
}
