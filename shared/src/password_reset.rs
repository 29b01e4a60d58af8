//! Password reset through a single-use link, for accounts not under SSO. Asking for a link
//! answers the same whether or not the account exists; the link (a random token, stored
//! only as its hash) lives one hour and works once.

use async_trait::async_trait;
use identity_core::digest::Digest;

use crate::accounts::{Account, AccountError, Accounts, Email};
use crate::crypto;
use crate::oauth::grant::Grants;
use crate::outbox;
use crate::secret::SecretString;
use crate::secrets::CookieKeys;
use crate::store::{Store, StoreError, Table};

use identity_core::password::{self, RESET_SUBJECTS, ResetRecord, UnderSso};
pub use identity_core::password::{
    MAX_PASSWORD_CHARS, MAX_RESET_MESSAGES_PER_HOUR, MIN_PASSWORD_CHARS, RESET_TTL_SECS,
};

fn token_key(token: &SecretString) -> String {
    crypto::sha256_hex(token.expose_secret().as_bytes())
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
    password::acceptable(p.expose_secret())
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

#[async_trait]
impl PasswordResets for Store {
    async fn request_password_reset(
        &self,
        email: &Email,
        link_base: &str,
        keys: &CookieKeys,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let token = crypto::random_token();
        let to = email.as_str();
        let body = format!(
            "Someone asked to reset the password of {to}. Follow this link within an hour \
             to choose a new one:\n\n{link_base}{token}\n\nIf it was not you, ignore this \
             message: nothing changes until the link is used.\n",
            token = token.expose_secret()
        );
        let reset_message = outbox::sealed(to, "Reset your password", &body, keys, now);
        let sso_note = outbox::sealed(
            to,
            "Your password",
            "Someone asked to reset the password of this account. Your organisation signs \
             you in through single sign-on, so the account has no password: sign in through \
             your organisation instead.\n",
            keys,
            now,
        );
        let (key, suffix) = (token_key(&token), crypto::b64url(&crypto::random_bytes(6)));
        let decoys = [crypto::random_token(), crypto::random_token()];
        let fresh = password::Fresh {
            token_key: &key,
            reset_message: &reset_message,
            sso_note: &sso_note,
            suffix: &suffix,
            decoys: [decoys[0].expose_secret(), decoys[1].expose_secret()],
        };
        // Known or not, the email's outbox is read and one write is made, so the answer's
        // timing does not tell whether the account exists.
        let sent = self
            .run(
                |_| async {
                    let account = self
                        .account_by_email(email)
                        .await
                        .map_err(AccountError::into_store_error)?;
                    let recent = outbox::recent_count(self, email, RESET_SUBJECTS, 3600).await?;
                    Ok((account, recent))
                },
                |(account, recent), now| password::request(account.as_ref(), recent, &fresh, now),
            )
            .await?;
        if !sent {
            tracing::info!(
                "password reset: nothing sent (no such account, or the address's hourly limit)"
            );
        }
        Ok(sent)
    }

    async fn reset_pending(&self, token: &SecretString) -> Result<bool, StoreError> {
        Ok(self
            .get_item(Table::Once, &password::reset_pk(&token_key(token)), "once")
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
        let key = token_key(token);
        let pk = password::reset_pk(&key);
        if self.get_item(Table::Once, &pk, "once").await?.is_none() {
            return Ok(None);
        }
        // Hashed once (Argon2id is slow on purpose), before the plan that may run again.
        let hash = Digest::new(crypto::hash_password(new_password).map_err(AccountError::from)?);
        let reset = self
            .run(
                |_| async {
                    let Some(record) = self.get::<ResetRecord>(Table::Once, &pk, "once").await?
                    else {
                        return Ok((None, Vec::new()));
                    };
                    let account = self
                        .account(&record.account_id)
                        .await
                        .map_err(AccountError::into_store_error)?;
                    let grants = match &account {
                        Some(a) => self.grants_of(&a.id).await?,
                        None => Vec::new(),
                    };
                    Ok((account, grants))
                },
                |(account, grants), now| password::reset(&key, account, &grants, &hash, now),
            )
            .await;
        match reset {
            Ok(Ok(account)) => Ok(account),
            Ok(Err(UnderSso)) => Err(ResetError::UnderSso),
            Err(StoreError::Conflict) => Err(ResetError::Changed),
            Err(e) => Err(e.into()),
        }
    }
}
