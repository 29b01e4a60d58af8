//! The store side of an SSO login: the spent AuthnRequests (the request itself waits in the
//! browser's sealed cookie, so starting a login writes nothing), the replay cache of
//! assertion IDs, just-in-time accounts with their welcome link, the confirmation
//! an existing password account gives before it comes under SSO, and the outbox.
//!
//! Each step that changes several records is one atomic write, so a refused or raced login
//! leaves nothing behind.

use async_trait::async_trait;
use identity_core::sso;
use identity_core::sso::complete::{self, Assertion, Completed, Fresh, Loaded, Message, Refused};
use identity_core::sso::confirm::{self, Confirming, Unconfirmed};
use serde::{Deserialize, Serialize};

use crate::accounts::{Account, AccountError, Accounts, Email};
use crate::apps::AppError;
use crate::crypto;
use crate::idps::{Idp, Idps};
use crate::oauth::grant::Grants;
use crate::orgs::{self, OrgError, Orgs};
use crate::outbox::{self, OutboxMessage};
use crate::secret::SecretString;
use crate::secrets::CookieKeys;
use crate::store::{Load, SingleUse, Store, StoreError, Table};

use identity_core::sso::complete::{
    LINK_KIND, LinkRecord, REPLAY_KIND, REQUEST_SPENT_KIND, UPGRADE_KIND, WELCOME_KIND,
    WelcomeRecord,
};
pub use identity_core::sso::complete::{
    LINK_TTL_SECS, PendingUpgrade, REPLAY_MARGIN_SECS, REQUEST_TTL_SECS, UPGRADE_TTL_SECS,
    WELCOME_TTL_SECS,
};
pub use identity_core::sso::{MAX_LINK_MESSAGES_PER_HOUR, sign_in_idp};
const LINK_SUBJECT: &str = "Confirm single sign-on for your account";
use identity_core::store::once::pk as once_pk;

/// Request IDs are ours (`_` and hex) but arrive in a response: the key is their hash.
fn spent_request_key(id: &str) -> String {
    crypto::sha256_hex(id.as_bytes())
}

/// An AuthnRequest we sent, waiting for its response: kept sealed in the browser that
/// started the login (bound to its `__Host-` browser nonce), never in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlRequest {
    /// The AuthnRequest's ID (the response's `InResponseTo`).
    pub id: String,
    pub idp: String,
    /// Same-origin path to return to after login.
    pub return_to: String,
    /// Until when its response is taken.
    pub until: i64,
}

impl SamlRequest {
    /// May a response to it (its `InResponseTo` already matched to [`Self::id`]) come from
    /// `idp` at `now`?
    pub fn answerable_by(&self, idp: &str, now: i64) -> bool {
        self.idp == idp && now < self.until
    }
}

/// A validated assertion, ready to be turned into a login.
#[derive(Debug, Clone)]
pub struct SsoLogin<'a> {
    pub idp: &'a Idp,
    pub email: &'a Email,
    /// Our AuthnRequest's ID for an SP-initiated login; spent by the login.
    pub request_id: Option<&'a str>,
    pub assertion_id: &'a str,
    /// Until when the assertion could be presented again (its NotOnOrAfter).
    pub valid_until: i64,
    /// `{base}/account/welcome/` — the welcome link is this plus the token.
    pub welcome_base: &'a str,
    /// `{base}/sso/link/` — the link that confirms linking an existing account.
    pub link_base: &'a str,
    /// Where the person goes after login (kept for a pending upgrade).
    pub return_to: &'a str,
    /// Whom the assertion named, and the IdP session (for Single Logout).
    pub subject: Option<&'a crate::session::SamlSubject>,
}

/// What a login turned into.
#[derive(Debug)]
pub enum SsoOutcome {
    /// Sign the person in. `created`: a just-in-time account (pending, welcome sent).
    SignIn { account: Account, created: bool },
    /// The email belongs to an account with a password: its owner must confirm the move
    /// to SSO first. The token names the pending upgrade (kept in a cookie, never a URL).
    ConfirmUpgrade {
        account: Account,
        token: SecretString,
    },
    /// An existing account without a password, which the operator did not register for this
    /// IdP: its owner confirms through a link sent to the account's email (the outbox). No
    /// session. `sent`: a new link message was written (not when the hourly cap held it
    /// back); only then is there anything to deliver.
    ConfirmByEmail { account: Account, sent: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("assertion already used")]
    Replayed,
    #[error("unknown, expired or used AuthnRequest")]
    UnknownRequest,
    #[error("the account is under another IdP")]
    OtherIdp,
    #[error("the IdP does not own the account's email domain")]
    NotOwner,
    #[error("the IdP named another person (persistent NameID) for the account's email")]
    OtherPerson,
    #[error("the email's domain is not the IdP's")]
    OutsideDomains,
    #[error("the account changed meanwhile")]
    Changed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refused> for SsoError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::OutsideDomains => SsoError::OutsideDomains,
            Refused::OtherIdp => SsoError::OtherIdp,
            Refused::NotOwner => SsoError::NotOwner,
            Refused::OtherPerson => SsoError::OtherPerson,
            Refused::Replayed => SsoError::Replayed,
            Refused::UnknownRequest => SsoError::UnknownRequest,
        }
    }
}

impl From<AppError> for SsoError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Store(s) => SsoError::Store(s),
            other => SsoError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

impl From<OrgError> for SsoError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::Store(s) => SsoError::Store(s),
            other => SsoError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

impl From<AccountError> for SsoError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => SsoError::Store(s),
            AccountError::Changed | AccountError::EmailTaken => SsoError::Changed,
            other => SsoError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

fn token_key(token: &SecretString) -> String {
    crypto::sha256_hex(token.expose_secret().as_bytes())
}

#[async_trait]
pub trait SsoRecords {
    /// Whether an AuthnRequest ID was spent by a login.
    async fn saml_request_spent(&self, id: &str) -> Result<bool, StoreError>;
    /// Turns a validated assertion into a login, spending the request ID and recording the
    /// assertion ID in one atomic write with the account change it needs.
    async fn complete_sso_login(
        &self,
        login: &SsoLogin<'_>,
        keys: &CookieKeys,
    ) -> Result<SsoOutcome, SsoError>;
    async fn pending_upgrade(
        &self,
        token: &SecretString,
    ) -> Result<Option<PendingUpgrade>, StoreError>;
    /// The owner confirmed: their refresh tokens and OAuth grants are revoked, then the
    /// account comes under the IdP (its password dropped) as the pending record is
    /// consumed. `None` when the pending upgrade is gone.
    async fn confirm_upgrade(&self, token: &SecretString) -> Result<Option<Account>, SsoError>;
    /// The owner declined: the pending record goes, the account stays as it was.
    async fn decline_upgrade(&self, token: &SecretString) -> Result<bool, StoreError>;
    /// Follows a welcome link: a pending account becomes active. `None` for an unknown,
    /// expired or used link.
    async fn activate(&self, token: &SecretString) -> Result<Option<Account>, SsoError>;
    /// Is the welcome link still good? (read only, for the page before the button)
    async fn welcome_pending(&self, token: &SecretString) -> Result<bool, StoreError>;
    /// The IdP an emailed link would link its account to (read only, for the page before
    /// the button).
    async fn link_pending(&self, token: &SecretString) -> Result<Option<String>, StoreError>;
    /// Follows the emailed link: the account comes under the IdP, once. `None` for an
    /// unknown, expired or used link.
    async fn confirm_link(&self, token: &SecretString) -> Result<Option<Account>, SsoError>;
}

impl Store {
    /// The IdP an account is under, if that IdP is still registered as the generation the
    /// account came under.
    ///
    /// An IdP registered with `--insecure-any-domain` holds an account of a domain it does
    /// not own only while no IdP owns that domain: once one does, the account is under none
    /// (registering that IdP releases it; this holds if the release was cut short).
    async fn current_idp_of(&self, account: &Account) -> Result<Option<Idp>, StoreError> {
        let Some(id) = account.sso_idp.as_deref() else {
            return Ok(None);
        };
        let Some(idp) = self.idp(id).await?.filter(|i| account.is_under(i)) else {
            return Ok(None);
        };
        let domain = account.email_domain();
        if !idp.owns(domain)
            && self
                .idp_for_domain(domain)
                .await?
                .is_some_and(|owner| owner.id != idp.id)
        {
            return Ok(None);
        }
        Ok(Some(idp))
    }

    /// The IdP registered under `id`, if it is still the generation a record was made for
    /// (a pending upgrade, an emailed link): an id removed and registered
    /// again is another IdP.
    async fn idp_as_of(&self, id: &str, generation: &str) -> Result<Option<Idp>, StoreError> {
        Ok(self.idp(id).await?.filter(|i| i.generation == generation))
    }

    /// The IdP's team and enterprise account (when it names them and they exist) with
    /// what `account_id` holds on each now: the facts of `complete::org_ops`.
    async fn org_facts(
        &self,
        idp: &Idp,
        account_id: Option<&str>,
    ) -> Result<
        (
            Option<(orgs::Team, Option<orgs::TeamRole>)>,
            Option<Enterprise>,
        ),
        StoreError,
    > {
        let mut team = None;
        if let Some(name) = idp.team.as_deref() {
            match self.team_by_name(name).await.map_err(org_store)? {
                Some(t) => {
                    let current = match account_id {
                        Some(id) => self.team_role_of(&t.id, id).await.map_err(org_store)?,
                        None => None,
                    };
                    team = Some((t, current));
                }
                None => {
                    tracing::warn!(idp = %idp.id, "the IdP's team does not exist; no team role given")
                }
            }
        }
        let mut enterprise = None;
        if let Some(name) = idp.enterprise.as_deref() {
            match self.enterprise_by_name(name).await.map_err(org_store)? {
                Some(e) => {
                    let current = match account_id {
                        Some(id) => self.permissions_of(&e.id, id).await.map_err(org_store)?,
                        None => None,
                    };
                    enterprise = Some((e, current));
                }
                None => {
                    tracing::warn!(idp = %idp.id, "the IdP's enterprise account does not exist; no permission given")
                }
            }
        }
        Ok((team, enterprise))
    }

    /// The facts of a confirmation (`identity_core::sso::confirm`): the account, the IdP as
    /// of `generation`, the IdP the account is under now, its grants, and (`orgs`) the
    /// IdP's organisations.
    async fn confirming(
        &self,
        account_id: &str,
        idp: &str,
        generation: &str,
        orgs: bool,
    ) -> Result<Confirming, StoreError> {
        let account = self
            .account(account_id)
            .await
            .map_err(AccountError::into_store_error)?;
        let idp = self.idp_as_of(idp, generation).await?;
        let (Some(a), Some(i)) = (&account, &idp) else {
            return Ok(Confirming {
                account,
                idp,
                ..Confirming::default()
            });
        };
        let current_idp = self.current_idp_of(a).await?.map(|i| i.id);
        let grants = self.grants_of(&a.id).await?;
        let mut loaded = Loaded::default();
        if orgs {
            (loaded.team, loaded.enterprise) = self.org_facts(i, Some(&a.id)).await?;
        }
        Ok(Confirming {
            current_idp,
            grants,
            orgs: loaded,
            account,
            idp,
        })
    }

    /// The facts of an SSO login (`identity_core::sso::complete`). Only what the path
    /// needs is read: the grants where it links, the recent links where it emails one, the
    /// organisations where it signs in; the replay and request records only after a
    /// conflict, since the write's conditions judge them first.
    async fn login_facts(&self, login: &Assertion<'_>, when: Load) -> Result<Loaded, StoreError> {
        let account = self
            .account_by_email(login.email)
            .await
            .map_err(AccountError::into_store_error)?;
        let current_idp = match &account {
            Some(a) => self.current_idp_of(a).await?.map(|i| i.id),
            None => None,
        };
        let domain_owner = self
            .idp_for_domain(login.email.domain())
            .await?
            .map(|i| i.id);
        if domain_owner.is_none() && login.idp.any_domain {
            tracing::warn!(idp = %login.idp.id, "login through an IdP registered with --insecure-any-domain, for a domain no IdP owns");
        }
        let mut loaded = Loaded {
            account,
            current_idp,
            domain_owner,
            ..Loaded::default()
        };
        let path = complete::path(login, &loaded);
        match path {
            Ok(sso::Path::LinkRegistered) => {
                if let Some(a) = &loaded.account {
                    loaded.grants = self.grants_of(&a.id).await?;
                }
            }
            Ok(sso::Path::ConfirmByEmail) => {
                loaded.recent_links =
                    outbox::recent_count(self, login.email, &[LINK_SUBJECT], 3600).await?;
            }
            _ => {}
        }
        if matches!(
            path,
            Ok(sso::Path::Create | sso::Path::SignIn | sso::Path::LinkRegistered)
        ) {
            let id = loaded.account.as_ref().map(|a| a.id.to_string());
            (loaded.team, loaded.enterprise) = self.org_facts(login.idp, id.as_deref()).await?;
        }
        if when == Load::AfterConflict {
            loaded.replayed = Some(self.was_used(REPLAY_KIND, login.replay_key).await?);
            if let Some(key) = login.request_key {
                loaded.request_spent = Some(self.was_used(REQUEST_SPENT_KIND, key).await?);
            }
        }
        Ok(loaded)
    }
}

type Enterprise = (orgs::Enterprise, Option<Vec<orgs::Permission>>);

fn org_store(e: OrgError) -> StoreError {
    match e {
        OrgError::Store(s) => s,
        other => StoreError::Corrupt(other.to_string()),
    }
}

/// The replay record's key: the IdP and the assertion's ID, hashed.
fn replay_key(login: &SsoLogin<'_>) -> String {
    crypto::sha256_hex(format!("{}\n{}", login.idp.id, login.assertion_id).as_bytes())
}

/// A message with a link (`base` + a fresh token) for `to`, sealed, and the token.
fn fresh_message(
    to: &str,
    subject: &str,
    text: impl FnOnce(&str) -> String,
    base: &str,
    keys: &CookieKeys,
    now: i64,
) -> (SecretString, OutboxMessage, String) {
    let token = crypto::random_token();
    let body = text(&format!("{base}{}", token.expose_secret()));
    (
        token,
        outbox::sealed(to, subject, &body, keys, now),
        crypto::b64url(&crypto::random_bytes(6)),
    )
}

/// A confirmation's outcome as the callers take it; a plan that kept losing races is
/// "changed meanwhile".
fn confirmed_or_changed(
    confirmed: Result<confirm::Confirmed, StoreError>,
) -> Result<Option<Account>, SsoError> {
    match confirmed {
        Ok(Ok(account)) => Ok(account),
        Ok(Err(Unconfirmed::NotOwner)) => Err(SsoError::NotOwner),
        Ok(Err(Unconfirmed::OtherIdp)) => Err(SsoError::OtherIdp),
        Err(StoreError::Conflict) => Err(SsoError::Changed),
        Err(e) => Err(e.into()),
    }
}

/// The two messages an SSO login may send, each with its fresh single-use token: the
/// welcome link of an account made just now, and the link that moves an existing account
/// to the IdP. Made before the plan, which decides which (if either) is stored.
fn login_messages(
    login: &SsoLogin<'_>,
    keys: &CookieKeys,
    now: i64,
) -> [(SecretString, OutboxMessage, String); 2] {
    let email = login.email.as_str();
    let idp = &login.idp.id;
    let welcome = fresh_message(
        email,
        "Activate your account",
        |link| {
            format!(
                "Welcome! Your organisation signed you in through single sign-on and an \
                 account was made for {email}. Follow this link within 7 days to activate \
                 it:\n\n{link}\n"
            )
        },
        login.welcome_base,
        keys,
        now,
    );
    let link = fresh_message(
        email,
        LINK_SUBJECT,
        |link| {
            format!(
                "Your organisation's identity provider {idp} asked to sign in your account \
                 {email}. If you want this account to sign in through {idp} from now on, \
                 follow this link within 24 hours:\n\n{link}\n\nIf you did not try to sign \
                 in, ignore this message: nothing changes.\n"
            )
        },
        login.link_base,
        keys,
        now,
    );
    [welcome, link]
}

#[async_trait]
impl SsoRecords for Store {
    async fn saml_request_spent(&self, id: &str) -> Result<bool, StoreError> {
        self.was_used(REQUEST_SPENT_KIND, &spent_request_key(id))
            .await
    }

    async fn complete_sso_login(
        &self,
        login: &SsoLogin<'_>,
        keys: &CookieKeys,
    ) -> Result<SsoOutcome, SsoError> {
        let [
            (welcome_token, welcome, welcome_suffix),
            (link_token, link, link_suffix),
        ] = login_messages(login, keys, self.now());
        let upgrade_token = crypto::random_token();
        let (welcome_key, link_key, upgrade_key) = (
            token_key(&welcome_token),
            token_key(&link_token),
            token_key(&upgrade_token),
        );
        let account_id = uuid::Uuid::new_v4().to_string();
        let fresh = Fresh {
            account_id: &account_id,
            welcome: Message {
                token_key: &welcome_key,
                message: &welcome,
                suffix: &welcome_suffix,
            },
            link: Message {
                token_key: &link_key,
                message: &link,
                suffix: &link_suffix,
            },
            upgrade_key: &upgrade_key,
        };
        let replay = replay_key(login);
        let request = login.request_id.map(spent_request_key);
        let assertion = Assertion {
            idp: login.idp,
            email: login.email,
            request_key: request.as_deref(),
            replay_key: &replay,
            valid_until: login.valid_until,
            return_to: login.return_to,
            subject: login.subject,
        };
        let outcome = self
            .run(
                |when| self.login_facts(&assertion, when),
                |loaded, now| complete::complete(&assertion, loaded, &fresh, now),
            )
            .await;
        let completed = match outcome {
            Ok(Ok(completed)) => completed,
            Ok(Err(refused)) => return Err(refused.into()),
            Err(StoreError::Conflict) => return Err(SsoError::Changed),
            Err(e) => return Err(e.into()),
        };
        Ok(match completed {
            Completed::SignIn { account, created } => SsoOutcome::SignIn { account, created },
            Completed::ConfirmByEmail { account, sent } => {
                SsoOutcome::ConfirmByEmail { account, sent }
            }
            Completed::ConfirmUpgrade { account } => SsoOutcome::ConfirmUpgrade {
                account,
                token: upgrade_token,
            },
        })
    }

    async fn pending_upgrade(
        &self,
        token: &SecretString,
    ) -> Result<Option<PendingUpgrade>, StoreError> {
        self.get(
            Table::Once,
            &once_pk(UPGRADE_KIND, &token_key(token)),
            "once",
        )
        .await
    }

    async fn confirm_upgrade(&self, token: &SecretString) -> Result<Option<Account>, SsoError> {
        let key = token_key(token);
        let confirmed = self
            .run(
                |_| async {
                    let pending = self.pending_upgrade(token).await?;
                    let c = match &pending {
                        Some(p) => {
                            self.confirming(&p.account_id, &p.idp, &p.generation, true)
                                .await?
                        }
                        None => Confirming::default(),
                    };
                    Ok((pending, c))
                },
                |(pending, c), now| confirm::upgrade_confirmed(&key, pending.as_ref(), c, now),
            )
            .await;
        confirmed_or_changed(confirmed)
    }

    async fn decline_upgrade(&self, token: &SecretString) -> Result<bool, StoreError> {
        Ok(self
            .take(
                Table::Once,
                &once_pk(UPGRADE_KIND, &token_key(token)),
                "once",
            )
            .await?
            .is_some())
    }

    async fn activate(&self, token: &SecretString) -> Result<Option<Account>, SsoError> {
        let key = token_key(token);
        let pk = once_pk(WELCOME_KIND, &key);
        let activated = self
            .run(
                |_| async {
                    match self.get::<WelcomeRecord>(Table::Once, &pk, "once").await? {
                        Some(record) => self
                            .account(&record.account_id)
                            .await
                            .map_err(AccountError::into_store_error),
                        None => Ok(None),
                    }
                },
                |account, _| confirm::welcomed(&key, account),
            )
            .await;
        match activated {
            Ok(a) => Ok(a),
            Err(StoreError::Conflict) => Err(SsoError::Changed),
            Err(e) => Err(e.into()),
        }
    }

    async fn link_pending(&self, token: &SecretString) -> Result<Option<String>, StoreError> {
        let pk = once_pk(LINK_KIND, &token_key(token));
        Ok(self
            .get::<LinkRecord>(Table::Once, &pk, "once")
            .await?
            .map(|r| r.idp))
    }

    async fn confirm_link(&self, token: &SecretString) -> Result<Option<Account>, SsoError> {
        let key = token_key(token);
        let pk = once_pk(LINK_KIND, &key);
        let confirmed = self
            .run(
                |_| async {
                    match self.get::<LinkRecord>(Table::Once, &pk, "once").await? {
                        Some(r) => {
                            self.confirming(&r.account_id, &r.idp, &r.generation, false)
                                .await
                        }
                        None => Ok(Confirming::default()),
                    }
                },
                |c, now| confirm::link_confirmed(&key, c, now),
            )
            .await;
        confirmed_or_changed(confirmed)
    }

    async fn welcome_pending(&self, token: &SecretString) -> Result<bool, StoreError> {
        Ok(self
            .get_item(
                Table::Once,
                &once_pk(WELCOME_KIND, &token_key(token)),
                "once",
            )
            .await?
            .is_some())
    }
}
