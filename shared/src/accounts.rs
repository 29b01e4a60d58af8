//! Accounts: one per email, `active` or `pending` (created by a first SSO login and
//! waiting for the welcome link), with an optional password and an optional IdP.

use async_trait::async_trait;
use identity_core::digest::Digest;

use crate::crypto;
use crate::secret::SecretString;
use crate::store::{Store, StoreError, Table};

pub use identity_core::account::{
    Account, AccountStatus, Change, Email, EmailPointer, IdpRef, InvalidEmail, account_pk,
    create_ops, email_pk, new_account, update_op,
};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("not a valid email address")]
    InvalidEmail,
    #[error("no such account")]
    NotFound,
    #[error("the account changed meanwhile; try again")]
    Changed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
}

impl From<InvalidEmail> for AccountError {
    fn from(_: InvalidEmail) -> Self {
        AccountError::InvalidEmail
    }
}

impl AccountError {
    /// As a store error, for callers whose own errors carry only those: the store's own
    /// failure as it was, any other as a record that could not be used.
    pub fn into_store_error(self) -> StoreError {
        match self {
            AccountError::Store(s) => s,
            other => StoreError::Corrupt(other.to_string()),
        }
    }
}

#[async_trait]
pub trait Accounts {
    /// Creates an account; refuses an email that already has one.
    async fn create_account(
        &self,
        email: &Email,
        password: Option<&SecretString>,
        status: AccountStatus,
    ) -> Result<Account, AccountError> {
        self.create_account_for_idp(email, password, status, None)
            .await
    }
    /// Creates an account that an operator registered for the IdP owning its domain.
    async fn create_account_for_idp(
        &self,
        email: &Email,
        password: Option<&SecretString>,
        status: AccountStatus,
        registered_idp: Option<&dyn IdpRef>,
    ) -> Result<Account, AccountError>;
    async fn account(&self, id: &str) -> Result<Option<Account>, AccountError>;
    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>, AccountError>;
    /// Saves changes to an account read earlier; refuses if it changed in between.
    async fn update_account(&self, account: &Account) -> Result<Account, AccountError>;
    async fn list_accounts(&self) -> Result<Vec<Account>, AccountError>;
}

#[async_trait]
impl Accounts for Store {
    async fn create_account_for_idp(
        &self,
        email: &Email,
        password: Option<&SecretString>,
        status: AccountStatus,
        registered_idp: Option<&dyn IdpRef>,
    ) -> Result<Account, AccountError> {
        let password_hash = password
            .map(crypto::hash_password)
            .transpose()?
            .map(Digest::new);
        let id = uuid::Uuid::new_v4().to_string();
        let mut account = new_account(&id, email, password_hash, status, None, self.now());
        account.registered_idp = registered_idp.map(|i| i.idp_id().to_string());
        account.registered_generation = registered_idp.map(|i| i.idp_generation().to_string());
        match self.write(create_ops(&account)?).await {
            Ok(()) => Ok(account),
            Err(StoreError::Conflict) => Err(AccountError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, AccountError> {
        Ok(self
            .get_versioned(Table::Accounts, &account_pk(id), "account")
            .await?)
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>, AccountError> {
        match self
            .get::<EmailPointer>(Table::Accounts, &email_pk(email), "email")
            .await?
        {
            Some(p) => self.account(&p.account_id).await,
            None => Ok(None),
        }
    }

    async fn update_account(&self, account: &Account) -> Result<Account, AccountError> {
        let (op, next) = update_op(account)?;
        match self.write(vec![op]).await {
            Ok(()) => Ok(next),
            Err(StoreError::Conflict) => Err(AccountError::Changed),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, AccountError> {
        let items = self.backend().scan(Table::Accounts, self.now()).await?;
        items
            .iter()
            .filter(|i| i.sk == "account")
            .map(|i| Ok(i.parse_versioned()?))
            .collect()
    }
}

/// Offboarding: ending what an account holds, at once, on both backends.
#[async_trait]
pub trait Offboarding {
    /// Ends every session and API key of the account ("sign out everywhere"). Grants (the
    /// CLI's login, apps the person approved) stay: the account page revokes those one by
    /// one.
    async fn sign_out_everywhere(&self, account_id: &str) -> Result<Account, AccountError>;
    /// Blocks the account: its grants (refresh tokens, access tokens, JWT-grant tokens,
    /// named authorizations) are revoked first, then its sessions end and it signs in
    /// nowhere until unblocked.
    async fn block_account(&self, account_id: &str) -> Result<Account, AccountError>;
    /// As `block_account`, recording the organisation that blocked it (`None`: the operator).
    /// An account already blocked keeps its first block.
    async fn block_account_by(
        &self,
        account_id: &str,
        by: Option<&str>,
    ) -> Result<Account, AccountError>;
    /// Lets a blocked account sign in again (what was revoked stays revoked).
    async fn unblock_account(&self, account_id: &str) -> Result<Account, AccountError>;
}

/// Runs a change to the account as one plan (`identity_core::account::change`); a block's
/// grants are loaded with it.
async fn change_account(
    store: &Store,
    account_id: &str,
    what: Change<'_>,
) -> Result<Account, AccountError> {
    let changed = store
        .run(
            |_| async {
                let account = store
                    .account(account_id)
                    .await
                    .map_err(AccountError::into_store_error)?;
                let grants = match (&account, what) {
                    (Some(a), Change::Block { .. } | Change::Release { .. }) => {
                        crate::oauth::Grants::grants_of(store, &a.id).await?
                    }
                    _ => Vec::new(),
                };
                Ok((account, grants))
            },
            |(account, grants), now| identity_core::account::change(account, &grants, what, now),
        )
        .await;
    match changed {
        Ok(Some(account)) => Ok(account),
        Ok(None) => Err(AccountError::NotFound),
        Err(StoreError::Conflict) => Err(AccountError::Changed),
        Err(e) => Err(e.into()),
    }
}

/// Takes the account out of SSO under the IdP `from` (`Change::Release`: its grants revoked
/// in the same write, any beyond what one write holds after it); `false` when it is not
/// under `from`, or gone.
pub(crate) async fn release_from_idp(
    store: &Store,
    account_id: &str,
    from: &str,
) -> Result<bool, AccountError> {
    use crate::oauth::Grants;
    match change_account(store, account_id, Change::Release { from }).await {
        Ok(_) => {
            store.revoke_grants_of(account_id).await?;
            Ok(true)
        }
        Err(AccountError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Offboarding for Store {
    async fn sign_out_everywhere(&self, account_id: &str) -> Result<Account, AccountError> {
        change_account(self, account_id, Change::SignOutEverywhere).await
    }

    async fn block_account(&self, account_id: &str) -> Result<Account, AccountError> {
        self.block_account_by(account_id, None).await
    }

    async fn block_account_by(
        &self,
        account_id: &str,
        by: Option<&str>,
    ) -> Result<Account, AccountError> {
        use crate::oauth::Grants;
        let blocked = change_account(self, account_id, Change::Block { by }).await?;
        // Grants beyond what one write holds, and any made meanwhile by a session that was
        // about to end, go now; the account signs in nowhere already.
        self.revoke_grants_of(account_id).await?;
        Ok(blocked)
    }

    async fn unblock_account(&self, account_id: &str) -> Result<Account, AccountError> {
        change_account(self, account_id, Change::Unblock).await
    }
}
