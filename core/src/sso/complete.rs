//! An SSO login as one plan. The ACS has validated the response; [`complete`] decides, from
//! what was loaded and `now`, what the login does and every record it writes:
//!
//! - the assertion's replay record and the spent AuthnRequest ID (both refused if they
//!   live: a second presentation, or a second response to one request, writes nothing);
//! - the path's own writes: a new pending account with its welcome link and message; a
//!   persistent NameID bound on first sight; a registered account linked, its grants
//!   revoked and its API keys ended *in the same write*; a pending upgrade; an emailed
//!   link (at most [`super::MAX_LINK_MESSAGES_PER_HOUR`]);
//! - the IdP's team role and enterprise permissions (`crate::org`).

use serde::{Deserialize, Serialize};

use super::{Path, Refusal, bind_name_id, login, may_send_link};
use crate::account::{self, Account, AccountStatus, Email};
use crate::grant::{self, Grant};
use crate::idp::Idp;
use crate::org::{self, Enterprise, Permission, Team, TeamRole};
use crate::outbox::{self, OutboxMessage};
use crate::plan::Plan;
use crate::store::{Op, StoreError, once};

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

/// A spent AuthnRequest ID (written by the login it answered, so it answers once).
pub const REQUEST_SPENT_KIND: &str = "saml-request-spent";
pub const REPLAY_KIND: &str = "saml-assertion";
pub const WELCOME_KIND: &str = "welcome";
pub const UPGRADE_KIND: &str = "sso-upgrade";
pub const LINK_KIND: &str = "sso-link";

/// Whom an assertion named: the NameID with its format and qualifiers (a LogoutRequest must
/// repeat them) and the AuthnStatement's SessionIndex (the IdP's session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlSubject {
    pub name_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_qualifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp_name_qualifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_index: Option<String>,
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
    pub subject: Option<SamlSubject>,
}

/// An emailed link's record: the account it links to the IdP (that generation of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkRecord {
    pub account_id: String,
    pub idp: String,
    #[serde(default)]
    pub generation: String,
}

/// A welcome link's record: the pending account it activates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WelcomeRecord {
    pub account_id: String,
}

/// The validated assertion, as the plan needs it.
#[derive(Debug, Clone, Copy)]
pub struct Assertion<'a> {
    pub idp: &'a Idp,
    pub email: &'a Email,
    /// The key (hash) of our AuthnRequest's ID for an SP-initiated login; spent by it.
    pub request_key: Option<&'a str>,
    /// The key (hash of the IdP and the assertion's ID) of its replay record.
    pub replay_key: &'a str,
    /// Until when the assertion could be presented again (its NotOnOrAfter).
    pub valid_until: i64,
    /// Where the person goes after login (kept for a pending upgrade).
    pub return_to: &'a str,
    pub subject: Option<&'a SamlSubject>,
}

/// What is loaded for a login.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The account the email names.
    pub account: Option<Account>,
    /// The IdP that account is under now (registered as the generation it came under, and
    /// still entitled to its domain).
    pub current_idp: Option<String>,
    /// The IdP that owns the email's domain.
    pub domain_owner: Option<String>,
    /// The account's live grants (loaded where the path links the account).
    pub grants: Vec<Grant>,
    /// The IdP's team and the account's role on it now.
    pub team: Option<(Team, Option<TeamRole>)>,
    /// The IdP's enterprise account and the account's permissions on it now.
    pub enterprise: Option<(Enterprise, Option<Vec<Permission>>)>,
    /// SSO-link messages to the email in the last hour.
    pub recent_links: usize,
    /// Whether the assertion's replay record lives; `None`: not read (the write's
    /// condition judges, and a conflict loads it).
    pub replayed: Option<bool>,
    /// Whether the AuthnRequest's ID was spent; `None`: not read.
    pub request_spent: Option<bool>,
}

/// A message a path may send: the key of its link's token and the message, sealed.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub token_key: &'a str,
    pub message: &'a OutboxMessage,
    /// The outbox key's random suffix.
    pub suffix: &'a str,
}

/// Fresh random values a path may use (made by the caller).
#[derive(Debug, Clone, Copy)]
pub struct Fresh<'a> {
    pub account_id: &'a str,
    pub welcome: Message<'a>,
    pub link: Message<'a>,
    /// The key of the pending upgrade's token.
    pub upgrade_key: &'a str,
}

/// What the login does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completed {
    /// Sign the person in. `created`: a just-in-time account (pending, welcome sent).
    SignIn { account: Account, created: bool },
    /// The account has a password: its owner confirms the move with it first (the pending
    /// upgrade is under the fresh upgrade key).
    ConfirmUpgrade { account: Account },
    /// A password-less account the operator did not register for this IdP: its owner
    /// confirms through the emailed link. `sent`: a new message was written (not when the
    /// hourly cap held it back).
    ConfirmByEmail { account: Account, sent: bool },
}

/// Why the login is refused; nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The email's domain is another IdP's, or no IdP's and this one may not speak for
    /// unclaimed domains.
    OutsideDomains,
    /// The account is under another IdP.
    OtherIdp,
    /// The IdP does not own the account's email domain.
    NotOwner,
    /// The IdP named another person (persistent NameID) for the account's email.
    OtherPerson,
    /// The assertion was presented before.
    Replayed,
    /// The AuthnRequest was answered before.
    UnknownRequest,
}

/// An IdP speaks only for its own email domains, never for another IdP's; a domain no IdP
/// owns is open only to an IdP registered with `--insecure-any-domain`.
pub fn speaks_for(idp: &Idp, domain_owner: Option<&str>) -> bool {
    match domain_owner {
        Some(owner) => owner == idp.id,
        None => idp.any_domain,
    }
}

/// The persistent NameID a login carries, if its NameID is of that format.
pub fn persistent_name_id(subject: Option<&SamlSubject>) -> Option<&str> {
    subject
        .filter(|s| s.format.as_deref() == Some(super::PERSISTENT))
        .map(|s| s.name_id.as_str())
}

/// The path [`login`] picks for these facts.
pub fn path(a: &Assertion<'_>, loaded: &Loaded) -> Result<Path, Refusal> {
    let existing = match &loaded.account {
        None => super::Existing::None,
        Some(account) => super::Existing::Account {
            current_idp: loaded.current_idp.as_deref(),
            has_password: account.has_password(),
            registered_for_this_idp: account.is_registered_for(a.idp),
        },
    };
    login(&existing, &a.idp.id, a.idp.owns(a.email.domain()))
}

/// The refusals judged before any path: the domain rule, then a replayed assertion (the
/// attack the replay record guards against, named first), then a spent request, then the
/// path rule's own.
fn refused(a: &Assertion<'_>, loaded: &Loaded) -> Result<Path, Refused> {
    if !speaks_for(a.idp, loaded.domain_owner.as_deref()) {
        return Err(Refused::OutsideDomains);
    }
    if loaded.replayed == Some(true) {
        return Err(Refused::Replayed);
    }
    if a.request_key.is_some() && loaded.request_spent == Some(true) {
        return Err(Refused::UnknownRequest);
    }
    path(a, loaded).map_err(|r| match r {
        Refusal::OtherIdp => Refused::OtherIdp,
        Refusal::NotOwner => Refused::NotOwner,
    })
}

/// The login as a plan; see the module's documentation.
pub fn complete(
    a: &Assertion<'_>,
    loaded: Loaded,
    fresh: &Fresh<'_>,
    now: i64,
) -> Result<Plan<Result<Completed, Refused>>, StoreError> {
    let path = match refused(a, &loaded) {
        Ok(p) => p,
        Err(r) => return Ok(Plan::answer(Err(r))),
    };
    let mut ops = vec![once::used(
        REPLAY_KIND,
        a.replay_key,
        a.valid_until.max(now) + REPLAY_MARGIN_SECS,
    )?];
    if let Some(key) = a.request_key {
        // The request answers once: its ID is spent with the login (a second response to
        // it, even with another assertion, finds it spent).
        ops.push(once::used(REQUEST_SPENT_KIND, key, now + REQUEST_TTL_SECS)?);
    }
    let account = loaded.account.clone();
    let completed = match (path, account) {
        (Path::Create, _) => create(a, &loaded, fresh, now, &mut ops)?,
        // The path rule creates where no account was loaded.
        (_, None) => {
            return Err(StoreError::Corrupt(
                "an SSO path without its account".into(),
            ));
        }
        (Path::SignIn, Some(account)) => match sign_in(a, &loaded, account, &mut ops)? {
            Some(c) => c,
            None => return Ok(Plan::answer(Err(Refused::OtherPerson))),
        },
        (Path::LinkRegistered, Some(account)) => link(a, &loaded, account, now, &mut ops)?,
        (Path::ConfirmByEmail, Some(account)) => {
            let sent = may_send_link(loaded.recent_links);
            if sent {
                let record = LinkRecord {
                    account_id: account.id.to_string(),
                    idp: a.idp.id.clone(),
                    generation: a.idp.generation.clone(),
                };
                ops.extend(message_ops(
                    &fresh.link,
                    LINK_KIND,
                    &record,
                    now + LINK_TTL_SECS,
                )?);
            }
            Completed::ConfirmByEmail { account, sent }
        }
        (Path::ConfirmUpgrade, Some(account)) => {
            let pending = PendingUpgrade {
                account_id: account.id.to_string(),
                idp: a.idp.id.clone(),
                generation: a.idp.generation.clone(),
                return_to: a.return_to.to_string(),
                subject: a.subject.cloned(),
            };
            let expires = now + UPGRADE_TTL_SECS;
            ops.push(once::put(
                UPGRADE_KIND,
                fresh.upgrade_key,
                &pending,
                expires,
            )?);
            Completed::ConfirmUpgrade { account }
        }
    };
    Ok(Plan::write(ops, Ok(completed)))
}

/// A new account, pending until its welcome link is followed, under the IdP.
fn create(
    a: &Assertion<'_>,
    loaded: &Loaded,
    fresh: &Fresh<'_>,
    now: i64,
    ops: &mut Vec<Op>,
) -> Result<Completed, StoreError> {
    let mut account = account::new_account(
        fresh.account_id,
        a.email,
        None,
        AccountStatus::Pending,
        None,
        now,
    );
    account.put_under(a.idp);
    account.sso_name_id = persistent_name_id(a.subject).map(str::to_string);
    ops.extend(account::create_ops(&account)?);
    let record = WelcomeRecord {
        account_id: account.id.to_string(),
    };
    let expires = now + WELCOME_TTL_SECS;
    ops.extend(message_ops(&fresh.welcome, WELCOME_KIND, &record, expires)?);
    ops.extend(org_ops(loaded, &account)?);
    Ok(Completed::SignIn {
        account,
        created: true,
    })
}

/// The account is under this IdP: its first persistent NameID binds it; `None` when the
/// assertion names another person for it.
fn sign_in(
    a: &Assertion<'_>,
    loaded: &Loaded,
    account: Account,
    ops: &mut Vec<Op>,
) -> Result<Option<Completed>, StoreError> {
    let Ok(bind) = bind_name_id(
        account.sso_name_id.as_deref(),
        persistent_name_id(a.subject),
    ) else {
        return Ok(None);
    };
    let account = match bind {
        Some(first) => {
            let mut bound = account.clone();
            bound.sso_name_id = Some(first.to_string());
            let (op, next) = account::update_op(&bound)?;
            ops.push(op);
            next
        }
        None => account,
    };
    ops.extend(org_ops(loaded, &account)?);
    Ok(Some(Completed::SignIn {
        account,
        created: false,
    }))
}

/// A registered, password-less account comes under the IdP: what it authorized before is
/// revoked and its API keys end, in this write.
fn link(
    a: &Assertion<'_>,
    loaded: &Loaded,
    account: Account,
    now: i64,
    ops: &mut Vec<Op>,
) -> Result<Completed, StoreError> {
    ops.extend(grant::revoke_all(&loaded.grants, now)?);
    let mut linked = account;
    linked.put_under(a.idp);
    linked.sso_name_id = persistent_name_id(a.subject).map(str::to_string);
    linked.end_api_keys();
    let (op, next) = account::update_op(&linked)?;
    ops.push(op);
    ops.extend(org_ops(loaded, &next)?);
    Ok(Completed::SignIn {
        account: next,
        created: false,
    })
}

/// A link's single-use record and its message.
fn message_ops<T: Serialize>(
    m: &Message<'_>,
    kind: &str,
    record: &T,
    expires_at: i64,
) -> Result<Vec<Op>, StoreError> {
    Ok(vec![
        once::put(kind, m.token_key, record, expires_at)?,
        outbox::put(m.message, m.suffix)?,
    ])
}

/// What a login gives on the IdP's organisations (`crate::org`): on its team, the team's
/// default role to a newcomer or a collaborator, nothing to an admin or a member; on its
/// enterprise account, `view` to a newcomer and nothing to a member.
pub fn org_ops(loaded: &Loaded, account: &Account) -> Result<Vec<Op>, StoreError> {
    let mut ops = Vec::new();
    if let Some((team, current)) = &loaded.team
        && let Some(give) = org::team_role_on_sso(*current, team.default_role)
    {
        ops.extend(org::team_member_ops(team, account, give)?);
    }
    if let Some((enterprise, current)) = &loaded.enterprise
        && let Some(give) = org::enterprise_permissions_on_sso(current.as_deref())
    {
        ops.push(org::enterprise_member_op(enterprise, account, &give)?);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sealed;

    fn idp(id: &str, domain: &str) -> Idp {
        serde_json::from_value(serde_json::json!({
            "id": id, "entity_id": format!("https://{domain}/idp"),
            "sso_url": format!("https://{domain}/sso"), "certificates": ["x"],
            "domains": [domain], "generation": "g1", "created_at": 0,
        }))
        .unwrap()
    }

    fn message() -> OutboxMessage {
        OutboxMessage {
            to: "p@acme.example".into(),
            subject: "s".into(),
            body_sealed: Sealed::new("sealed"),
            created_at: 5,
        }
    }

    struct World {
        idp: Idp,
        email: Email,
        message: OutboxMessage,
    }

    fn world() -> World {
        World {
            idp: idp("acme", "acme.example"),
            email: Email::parse("p@acme.example").unwrap(),
            message: message(),
        }
    }

    fn assertion(w: &World) -> Assertion<'_> {
        Assertion {
            idp: &w.idp,
            email: &w.email,
            request_key: Some("req"),
            replay_key: "rep",
            valid_until: 100,
            return_to: "/",
            subject: None,
        }
    }

    fn fresh(w: &World) -> Fresh<'_> {
        let m = Message {
            token_key: "t",
            message: &w.message,
            suffix: "x",
        };
        Fresh {
            account_id: "new",
            welcome: m,
            link: m,
            upgrade_key: "u",
        }
    }

    fn owned() -> Loaded {
        Loaded {
            domain_owner: Some("acme".into()),
            ..Loaded::default()
        }
    }

    fn existing(w: &World, password: bool) -> Account {
        let hash = password.then(|| crate::digest::Digest::new("$argon2id$x"));
        account::new_account("a1", &w.email, hash, AccountStatus::Active, None, 0)
    }

    fn pks(plan: &Plan<Result<Completed, Refused>>) -> Vec<String> {
        plan.ops
            .iter()
            .map(|op| match op {
                Op::Put { item, .. } => item.pk.clone(),
                Op::Delete { pk, .. } | Op::Check { pk, .. } => pk.clone(),
            })
            .collect()
    }

    #[test]
    fn an_idp_speaks_only_for_its_own_domains_and_unclaimed_ones_only_when_allowed() {
        let w = world();
        let mut elsewhere = owned();
        elsewhere.domain_owner = Some("other".into());
        for loaded in [elsewhere, Loaded::default()] {
            let plan = complete(&assertion(&w), loaded, &fresh(&w), 10).unwrap();
            assert_eq!(plan, Plan::answer(Err(Refused::OutsideDomains)));
        }
        let mut any = idp("acme", "acme.example");
        any.any_domain = true;
        assert!(speaks_for(&any, None));
        assert!(!speaks_for(&any, Some("other")));
    }

    #[test]
    fn a_new_email_gets_a_pending_account_and_its_welcome_with_the_replay_and_request_records() {
        let w = world();
        let plan = complete(&assertion(&w), owned(), &fresh(&w), 10).unwrap();
        let Ok(Completed::SignIn { account, created }) = &plan.outcome else {
            panic!("{:?}", plan.outcome)
        };
        assert!(*created);
        assert_eq!(account.status, AccountStatus::Pending);
        assert_eq!(account.sso_idp.as_deref(), Some("acme"));
        assert_eq!(
            pks(&plan),
            [
                "saml-assertion#rep",
                "saml-request-spent#req",
                "email#p@acme.example",
                "account#new",
                "welcome#t",
                "outbox#p@acme.example",
            ]
        );
    }

    #[test]
    fn a_replayed_assertion_or_spent_request_writes_nothing() {
        let w = world();
        let mut replayed = owned();
        replayed.replayed = Some(true);
        let plan = complete(&assertion(&w), replayed, &fresh(&w), 10).unwrap();
        assert_eq!(plan, Plan::answer(Err(Refused::Replayed)));
        let mut spent = owned();
        spent.request_spent = Some(true);
        let plan = complete(&assertion(&w), spent, &fresh(&w), 10).unwrap();
        assert_eq!(plan, Plan::answer(Err(Refused::UnknownRequest)));
    }

    #[test]
    fn linking_a_registered_account_revokes_its_grants_in_the_same_write() {
        let w = world();
        let mut account = existing(&w, false);
        account.registered_idp = Some("acme".into());
        account.registered_generation = Some("g1".into());
        let grant = crate::grant::sample("g", 4);
        let loaded = Loaded {
            account: Some(account.clone()),
            grants: vec![grant],
            ..owned()
        };
        let plan = complete(&assertion(&w), loaded, &fresh(&w), 10).unwrap();
        let Ok(Completed::SignIn {
            account: linked, ..
        }) = &plan.outcome
        else {
            panic!("{:?}", plan.outcome)
        };
        assert_eq!(linked.key_epoch, account.key_epoch + 1, "its API keys end");
        assert_eq!(
            pks(&plan),
            [
                "saml-assertion#rep",
                "saml-request-spent#req",
                "grant#g",
                "account#a1",
                "account#a1",
            ]
        );
    }

    #[test]
    fn an_account_with_a_password_waits_for_its_owner_with_a_pending_upgrade() {
        let w = world();
        let loaded = Loaded {
            account: Some(existing(&w, true)),
            ..owned()
        };
        let plan = complete(&assertion(&w), loaded, &fresh(&w), 10).unwrap();
        assert!(matches!(plan.outcome, Ok(Completed::ConfirmUpgrade { .. })));
        assert_eq!(pks(&plan).last().unwrap(), "sso-upgrade#u");
    }

    #[test]
    fn an_unregistered_account_is_asked_by_email_at_most_three_times_an_hour() {
        let w = world();
        for (recent, sent) in [(0, true), (3, false)] {
            let loaded = Loaded {
                account: Some(existing(&w, false)),
                recent_links: recent,
                ..owned()
            };
            let plan = complete(&assertion(&w), loaded, &fresh(&w), 10).unwrap();
            assert!(
                matches!(plan.outcome, Ok(Completed::ConfirmByEmail { sent: s, .. }) if s == sent)
            );
            assert_eq!(pks(&plan).contains(&"sso-link#t".to_string()), sent);
        }
    }

    #[test]
    fn another_persistent_name_id_for_the_accounts_email_is_refused() {
        let w = world();
        let mut account = existing(&w, false);
        account.put_under(&w.idp);
        account.sso_name_id = Some("p-1".into());
        let subject = SamlSubject {
            name_id: "p-2".into(),
            format: Some(crate::sso::PERSISTENT.into()),
            name_qualifier: None,
            sp_name_qualifier: None,
            session_index: None,
        };
        let a = Assertion {
            subject: Some(&subject),
            ..assertion(&w)
        };
        let loaded = Loaded {
            account: Some(account),
            current_idp: Some("acme".into()),
            ..owned()
        };
        let plan = complete(&a, loaded, &fresh(&w), 10).unwrap();
        assert_eq!(plan, Plan::answer(Err(Refused::OtherPerson)));
    }
}
