//! The store side of an SSO login: the spent AuthnRequests (the request itself waits in the
//! browser's sealed cookie, so starting a login writes nothing), the replay cache of
//! assertion IDs, just-in-time accounts with their welcome link, the confirmation
//! an existing password account gives before it comes under SSO, and the outbox.
//!
//! Each step that changes several records is one atomic write, so a refused or raced login
//! leaves nothing behind.

use async_trait::async_trait;
use identity_core::{org, sso};
use serde::{Deserialize, Serialize};

use crate::accounts::{self, Account, AccountError, AccountStatus, Accounts, Email};
use crate::apps::AppError;
use crate::crypto;
use crate::idps::{Idp, Idps};
use crate::oauth::grant::Grants;
use crate::orgs::{self, OrgError, Orgs};
use crate::outbox;
use crate::secret::SecretString;
use crate::secrets::CookieKeys;
use crate::store::{Cond, Consumed, Item, Op, Store, StoreError, Table, used_op};

/// How long an AuthnRequest waits for its response.
pub const REQUEST_TTL_SECS: i64 = 600;
/// How long the welcome (activation) link works.
pub const WELCOME_TTL_SECS: i64 = 7 * 24 * 3600;
/// How long an existing account's owner has to confirm (or decline) the move to SSO.
pub const UPGRADE_TTL_SECS: i64 = 600;
/// The replay record outlives the assertion's own validity by the clock skew we allow.
pub const REPLAY_MARGIN_SECS: i64 = 180;
/// How long the emailed link that confirms linking an existing account to an IdP works.
pub const LINK_TTL_SECS: i64 = 24 * 3600;
/// At most this many such links to one address per hour (earlier ones still work).
pub use identity_core::sso::MAX_LINK_MESSAGES_PER_HOUR;
const LINK_SUBJECT: &str = "Confirm single sign-on for your account";

/// A spent AuthnRequest ID (written by the login it answered, so it answers once).
const REQUEST_SPENT_KIND: &str = "saml-request-spent";
const REPLAY_KIND: &str = "saml-assertion";
const WELCOME_KIND: &str = "welcome";
const UPGRADE_KIND: &str = "sso-upgrade";
const LINK_KIND: &str = "sso-link";

fn once_pk(kind: &str, key: &str) -> String {
    format!("{kind}#{key}")
}

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
    #[error("the account changed meanwhile")]
    Changed,
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// A move to SSO waiting for the account owner's confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpgrade {
    pub account_id: String,
    pub idp: String,
    /// The IdP's generation when the upgrade was asked for.
    #[serde(default)]
    pub generation: String,
    pub return_to: String,
    /// The login's SAML subject, for the session that starts once confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<crate::session::SamlSubject>,
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

#[derive(Serialize, Deserialize)]
struct LinkRecord {
    account_id: String,
    idp: String,
    #[serde(default)]
    generation: String,
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

    /// What an SSO login gives on the IdP's organisation, as writes to add to the login's
    /// own (`identity_core::org`): on its team, the team's default role to a newcomer or a
    /// collaborator, nothing to an admin or a member; on its enterprise account, `view` to
    /// a newcomer and nothing to a member. No organisation named, or none by that name:
    /// nothing.
    async fn org_ops(&self, idp: &Idp, account: &Account) -> Result<Vec<Op>, SsoError> {
        let mut ops = Vec::new();
        if let Some(name) = idp.team.as_deref() {
            match self.team_by_name(name).await? {
                Some(team) => {
                    let current = self.team_role_of(&team.id, &account.id).await?;
                    if let Some(give) = org::team_role_on_sso(current, team.default_role) {
                        ops.extend(orgs::team_member_ops(&team, account, give)?);
                    }
                }
                None => {
                    tracing::warn!(idp = %idp.id, "the IdP's team does not exist; no team role given")
                }
            }
        }
        if let Some(name) = idp.enterprise.as_deref() {
            match self.enterprise_by_name(name).await? {
                Some(enterprise) => {
                    let current = self.permissions_of(&enterprise.id, &account.id).await?;
                    if let Some(give) = org::enterprise_permissions_on_sso(current.as_deref()) {
                        ops.push(orgs::enterprise_member_op(&enterprise, account, &give)?);
                    }
                }
                None => {
                    tracing::warn!(idp = %idp.id, "the IdP's enterprise account does not exist; no permission given")
                }
            }
        }
        Ok(ops)
    }
}

/// The persistent NameID a login carries, if its NameID is of that format.
fn persistent_name_id(subject: Option<&crate::session::SamlSubject>) -> Option<&str> {
    subject
        .filter(|s| s.format.as_deref() == Some(sso::PERSISTENT))
        .map(|s| s.name_id.as_str())
}

/// A confirmation (the upgrade's password, the emailed link) moves the account only while
/// its IdP still owns the account's domain.
fn still_owner(idp: &Idp, account: &Account) -> Result<(), SsoError> {
    if idp.owns(account.email_domain()) {
        Ok(())
    } else {
        Err(SsoError::NotOwner)
    }
}

#[derive(Serialize, Deserialize)]
struct WelcomeRecord {
    account_id: String,
}

#[async_trait]
impl SsoRecords for Store {
    async fn saml_request_spent(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .get_item(
                Table::Once,
                &once_pk(REQUEST_SPENT_KIND, &spent_request_key(id)),
                "used",
            )
            .await?
            .is_some())
    }

    async fn complete_sso_login(
        &self,
        login: &SsoLogin<'_>,
        keys: &CookieKeys,
    ) -> Result<SsoOutcome, SsoError> {
        let now = self.now();
        let replay_key =
            crypto::sha256_hex(format!("{}\n{}", login.idp.id, login.assertion_id).as_bytes());
        let replay_pk = once_pk(REPLAY_KIND, &replay_key);
        let mut ops = vec![used_op(
            REPLAY_KIND,
            &replay_key,
            login.valid_until.max(now) + REPLAY_MARGIN_SECS,
        )?];
        if let Some(id) = login.request_id {
            // The request answers once: its ID is spent with the login (a second response to
            // it, even with another assertion, finds it spent).
            ops.push(used_op(
                REQUEST_SPENT_KIND,
                &spent_request_key(id),
                now + REQUEST_TTL_SECS,
            )?);
        }
        let existing = self.account_by_email(login.email).await?;
        let current = match &existing {
            Some(account) => self.current_idp_of(account).await?.map(|i| i.id),
            None => None,
        };
        let facts = match &existing {
            None => sso::Existing::None,
            Some(account) => sso::Existing::Account {
                current_idp: current.as_deref(),
                has_password: account.has_password(),
                registered_for_this_idp: account.is_registered_for(login.idp),
            },
        };
        let path = sso::login(&facts, &login.idp.id, login.idp.owns(login.email.domain()))
            .map_err(|r| match r {
                sso::Refusal::OtherIdp => SsoError::OtherIdp,
                sso::Refusal::NotOwner => SsoError::NotOwner,
            })?;
        let name_id = persistent_name_id(login.subject);
        let outcome = match (path, existing) {
            (sso::Path::Create, _) => {
                let mut account = accounts::new_account(
                    &uuid::Uuid::new_v4().to_string(),
                    login.email,
                    None,
                    AccountStatus::Pending,
                    None,
                    now,
                );
                account.put_under(login.idp);
                account.sso_name_id = name_id.map(str::to_string);
                ops.extend(accounts::create_ops(&account)?);
                ops.extend(welcome_ops(&account, login.welcome_base, keys, now)?);
                ops.extend(self.org_ops(login.idp, &account).await?);
                SsoOutcome::SignIn {
                    account,
                    created: true,
                }
            }
            (_, None) => return Err(SsoError::Changed),
            (sso::Path::SignIn, Some(account)) => {
                let bind = sso::bind_name_id(account.sso_name_id.as_deref(), name_id)
                    .map_err(|_| SsoError::OtherPerson)?;
                let account = match bind {
                    Some(first) => {
                        let mut bound = account.clone();
                        bound.sso_name_id = Some(first.to_string());
                        let (op, next) = accounts::update_op(&bound)?;
                        ops.push(op);
                        next
                    }
                    None => account,
                };
                ops.extend(self.org_ops(login.idp, &account).await?);
                SsoOutcome::SignIn {
                    account,
                    created: false,
                }
            }
            (sso::Path::LinkRegistered, Some(account)) => {
                // A move to SSO: what the account authorized before goes first.
                self.revoke_grants_of(&account.id).await?;
                let mut linked = account.clone();
                linked.put_under(login.idp);
                linked.sso_name_id = name_id.map(str::to_string);
                linked.end_api_keys();
                let (op, next) = accounts::update_op(&linked)?;
                ops.push(op);
                ops.extend(self.org_ops(login.idp, &next).await?);
                SsoOutcome::SignIn {
                    account: next,
                    created: false,
                }
            }
            (sso::Path::ConfirmByEmail, Some(account)) => {
                let recent = outbox::recent_count(self, login.email, &[LINK_SUBJECT], 3600).await?;
                let sent = sso::may_send_link(recent);
                if sent {
                    ops.extend(link_ops(&account, login, keys, now)?);
                }
                SsoOutcome::ConfirmByEmail { account, sent }
            }
            (sso::Path::ConfirmUpgrade, Some(account)) => {
                let token = crypto::random_token();
                let pending = PendingUpgrade {
                    account_id: account.id.to_string(),
                    idp: login.idp.id.clone(),
                    generation: login.idp.generation.clone(),
                    return_to: login.return_to.to_string(),
                    subject: login.subject.cloned(),
                };
                ops.push(Op::Put {
                    table: Table::Once,
                    item: Item::new(once_pk(UPGRADE_KIND, &token_key(&token)), "once", &pending)?
                        .expiring(now + UPGRADE_TTL_SECS),
                    cond: Cond::Absent,
                });
                SsoOutcome::ConfirmUpgrade { account, token }
            }
        };
        match self.write(ops).await {
            Ok(()) => Ok(outcome),
            Err(StoreError::Conflict) => {
                // Which condition failed? The replay record first: a second presentation of
                // the assertion is the attack this guards against.
                if self
                    .get_item(Table::Once, &replay_pk, "used")
                    .await?
                    .is_some()
                {
                    Err(SsoError::Replayed)
                } else if let Some(id) = login.request_id
                    && self.saml_request_spent(id).await?
                {
                    Err(SsoError::UnknownRequest)
                } else {
                    Err(SsoError::Changed)
                }
            }
            Err(e) => Err(e.into()),
        }
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
        let Some(pending) = self.pending_upgrade(token).await? else {
            return Ok(None);
        };
        let Some(account) = self.account(&pending.account_id).await? else {
            return Ok(None);
        };
        let Some(idp) = self.idp_as_of(&pending.idp, &pending.generation).await? else {
            return Ok(None);
        };
        still_owner(&idp, &account)?;
        let current = self.current_idp_of(&account).await?.map(|i| i.id);
        sso::upgrade(current.as_deref()).map_err(|_| SsoError::OtherIdp)?;
        // Revocation first: if anything below fails, the tokens are gone and the account is
        // not yet linked, which the owner can simply retry.
        self.revoke_grants_of(&account.id).await?;
        let mut linked = account.clone();
        linked.put_under(&idp);
        // Under SSO the password no longer signs in; it is dropped, not kept around, and
        // the sessions it opened end.
        linked.password_hash = None;
        linked.sso_name_id = persistent_name_id(pending.subject.as_ref()).map(str::to_string);
        linked.end_all_sessions();
        linked.end_api_keys();
        let (op, next) = accounts::update_op(&linked)?;
        let mut ops = vec![op];
        // The IdP's team role, in the same write.
        ops.extend(self.org_ops(&idp, &next).await?);
        let pk = once_pk(UPGRADE_KIND, &token_key(token));
        match self.consume_with(Table::Once, &pk, "once", ops).await? {
            Consumed::Done => Ok(Some(next)),
            Consumed::Gone => Ok(None),
            Consumed::Conflict => Err(SsoError::Changed),
        }
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
        let pk = once_pk(WELCOME_KIND, &token_key(token));
        let Some(record) = self.get::<WelcomeRecord>(Table::Once, &pk, "once").await? else {
            return Ok(None);
        };
        let Some(account) = self.account(&record.account_id).await? else {
            return Ok(None);
        };
        let mut ops = vec![];
        let next = if account.status == AccountStatus::Active {
            account
        } else {
            let mut active = account.clone();
            active.status = AccountStatus::Active;
            let (op, next) = accounts::update_op(&active)?;
            ops.push(op);
            next
        };
        match self.consume_with(Table::Once, &pk, "once", ops).await? {
            Consumed::Done => Ok(Some(next)),
            Consumed::Gone => Ok(None),
            Consumed::Conflict => Err(SsoError::Changed),
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
        let pk = once_pk(LINK_KIND, &token_key(token));
        let Some(record) = self.get::<LinkRecord>(Table::Once, &pk, "once").await? else {
            return Ok(None);
        };
        let Some(account) = self.account(&record.account_id).await? else {
            return Ok(None);
        };
        let Some(idp) = self.idp_as_of(&record.idp, &record.generation).await? else {
            return Ok(None);
        };
        still_owner(&idp, &account)?;
        let current = self.current_idp_of(&account).await?.map(|i| i.id);
        if !sso::confirmed_move(current.as_deref(), &idp.id).map_err(|_| SsoError::OtherIdp)? {
            return Ok(Some(account));
        }
        // A move to SSO: what the account authorized before goes first.
        self.revoke_grants_of(&account.id).await?;
        let mut linked = account.clone();
        linked.put_under(&idp);
        linked.end_all_sessions();
        linked.end_api_keys();
        linked.registered_idp = Some(idp.id.clone());
        linked.registered_generation = Some(idp.generation.clone());
        let (op, next) = accounts::update_op(&linked)?;
        match self
            .consume_with(Table::Once, &pk, "once", vec![op])
            .await?
        {
            Consumed::Done => Ok(Some(next)),
            Consumed::Gone => Ok(None),
            Consumed::Conflict => Err(SsoError::Changed),
        }
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

/// The welcome token record and the welcome message for a new account.
fn welcome_ops(
    account: &Account,
    welcome_base: &str,
    keys: &CookieKeys,
    now: i64,
) -> Result<Vec<Op>, StoreError> {
    let token = crypto::random_token();
    let link = format!("{welcome_base}{}", token.expose_secret());
    let body = format!(
        "Welcome! Your organisation signed you in through single sign-on and an account was \
         made for {email}. Follow this link within 7 days to activate it:\n\n{link}\n",
        email = account.email
    );
    Ok(vec![
        Op::Put {
            table: Table::Once,
            item: Item::new(
                once_pk(WELCOME_KIND, &token_key(&token)),
                "once",
                &WelcomeRecord {
                    account_id: account.id.to_string(),
                },
            )?
            .expiring(now + WELCOME_TTL_SECS),
            cond: Cond::Absent,
        },
        outbox::message_op(&account.email, "Activate your account", &body, keys, now)?,
    ])
}

/// The single-use link (and its message) that lets an existing account's owner confirm
/// that it comes under `login.idp`.
fn link_ops(
    account: &Account,
    login: &SsoLogin<'_>,
    keys: &CookieKeys,
    now: i64,
) -> Result<Vec<Op>, StoreError> {
    let token = crypto::random_token();
    let link = format!("{}{}", login.link_base, token.expose_secret());
    let body = format!(
        "Your organisation's identity provider {idp} asked to sign in your account {email}. \
         If you want this account to sign in through {idp} from now on, follow this link within \
         24 hours:\n\n{link}\n\nIf you did not try to sign in, ignore this message: nothing \
         changes.\n",
        idp = login.idp.id,
        email = account.email
    );
    Ok(vec![
        Op::Put {
            table: Table::Once,
            item: Item::new(
                once_pk(LINK_KIND, &token_key(&token)),
                "once",
                &LinkRecord {
                    account_id: account.id.to_string(),
                    idp: login.idp.id.clone(),
                    generation: login.idp.generation.clone(),
                },
            )?
            .expiring(now + LINK_TTL_SECS),
            cond: Cond::Absent,
        },
        outbox::message_op(&account.email, LINK_SUBJECT, &body, keys, now)?,
    ])
}
