//! SAML SSO's store parts (issue 4), each check an `async fn(&Fixture)` that
//! `tests/sso_store_suite.rs` runs on both backends: the IdP registry, just-in-time
//! accounts with their welcome link, the replay cache, the upgrade of a password account
//! (with its grants revoked) and the refusal paths that must leave nothing written.

use std::sync::Arc;

use identity_shared::accounts::{AccountStatus, Accounts, Email};
use identity_shared::idps::{Idp, IdpError, Idps};
use identity_shared::oauth::{Grants, Scopes};
use identity_shared::orgs::{Orgs, TeamRole};
use identity_shared::outbox::{OUTBOX_TTL_SECS, Outbox, SealedBody};
use identity_shared::secret::SecretString;
use identity_shared::secrets::CookieKeys;
use identity_shared::sso::{
    REQUEST_TTL_SECS, SsoError, SsoLogin, SsoOutcome, SsoRecords, WELCOME_TTL_SECS,
};
use identity_shared::store::Table;

use crate::Fixture;

pub fn cookie_keys() -> CookieKeys {
    CookieKeys::parse(&SecretString::new(
        serde_json::json!({ "current": "a test cookie key of at least 32 characters" }).to_string(),
    ))
    .expect("cookie keys")
}

/// An IdP record for `example.com` (the certificate is only stored here, never used).
pub fn idp(id: &str, domain: &str) -> Idp {
    Idp {
        id: id.into(),
        entity_id: format!("https://idp.{domain}/{id}"),
        sso_url: format!("https://idp.{domain}/sso"),
        certificates: vec!["MIIB".into()],
        domains: vec![domain.into()],
        team: Some(id.into()),
        enterprise: None,
        allow_idp_initiated: false,
        require_mfa: false,
        mfa_contexts: vec![],
        want_authn_requests_signed: false,
        slo_url: None,
        any_domain: false,
        development: false,
        generation: String::new(),
        created_at: 0,
        version: 1,
    }
}

fn login<'a>(idp: &'a Idp, email: &'a Email, assertion_id: &'a str, now: i64) -> SsoLogin<'a> {
    SsoLogin {
        idp,
        email,
        request_id: None,
        assertion_id,
        valid_until: now + 300,
        welcome_base: "http://127.0.0.1:3000/account/welcome/",
        link_base: "http://127.0.0.1:3000/sso/link/",
        return_to: "/somewhere",
        subject: None,
    }
}

/// The token of the link starting with `link_base` in the newest outbox message to
/// `email` (welcome, password reset, SSO link).
pub async fn link_token(f: &Fixture, email: &Email, link_base: &str) -> SecretString {
    let messages = f.store.outbox(Some(email)).await.unwrap();
    let body = messages[0].body(&cookie_keys()).expect("body opens");
    body.expose_secret()
        .split_whitespace()
        .find_map(|w| w.strip_prefix(link_base))
        .map(|t| SecretString::new(t.to_string()))
        .unwrap_or_else(|| panic!("no {link_base} link to {email}"))
}

/// The welcome token in the newest outbox message to `email`.
pub async fn welcome_token(f: &Fixture, email: &Email) -> SecretString {
    link_token(f, email, "http://127.0.0.1:3000/account/welcome/").await
}

pub async fn idp_registry_by_id_domain_and_entity(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    assert_eq!(
        f.store.idp("acme").await.unwrap().unwrap().entity_id,
        acme.entity_id
    );
    assert_eq!(
        f.store
            .idp_for_domain("ACME.example")
            .await
            .unwrap()
            .unwrap()
            .id,
        "acme"
    );
    assert_eq!(
        f.store
            .idp_by_entity_id(&acme.entity_id)
            .await
            .unwrap()
            .unwrap()
            .id,
        "acme"
    );
    assert!(
        f.store
            .idp_for_domain("other.example")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.store
            .idp_by_entity_id("https://nobody")
            .await
            .unwrap()
            .is_none()
    );
    // Taken id, taken entity ID, taken domain: refused, and nothing of the refused one lands.
    let mut again = idp("acme", "fresh.example");
    again.entity_id = "https://fresh".into();
    assert!(matches!(
        f.store.add_idp(&again).await,
        Err(IdpError::Taken)
    ));
    assert!(
        f.store
            .idp_for_domain("fresh.example")
            .await
            .unwrap()
            .is_none()
    );
    let mut same_domain = idp("acme2", "acme.example");
    same_domain.entity_id = "https://acme2".into();
    assert!(matches!(
        f.store.add_idp(&same_domain).await,
        Err(IdpError::Taken)
    ));
    assert!(f.store.idp("acme2").await.unwrap().is_none());
    // No certificates: refused.
    let mut bare = idp("bare", "bare.example");
    bare.certificates.clear();
    assert!(matches!(
        f.store.add_idp(&bare).await,
        Err(IdpError::Invalid(_))
    ));
    // Rollover.
    let rolled = f
        .store
        .set_idp_certificates("acme", vec!["NEW".into(), "OLD".into()])
        .await
        .unwrap();
    assert_eq!(rolled.certificates, vec!["NEW", "OLD"]);
    assert_eq!(f.store.list_idps().await.unwrap().len(), 1);
}

pub async fn jit_account_is_pending_until_the_welcome_link(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let email = Email::parse("new.person@acme.example").unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let outcome = f
        .store
        .complete_sso_login(&login(&acme, &email, "_a1", now), &cookie_keys())
        .await
        .unwrap();
    let SsoOutcome::SignIn { account, created } = outcome else {
        panic!("a new email signs in")
    };
    assert!(created);
    assert_eq!(account.status, AccountStatus::Pending);
    assert_eq!(account.sso_idp.as_deref(), Some("acme"));
    assert!(!account.has_password());
    let stored = f.store.account_by_email(&email).await.unwrap().unwrap();
    assert_eq!(stored.status, AccountStatus::Pending);
    // The welcome message waits in the outbox, sealed, with a link that works once.
    let messages = f.store.outbox(Some(&email)).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].to, "new.person@acme.example");
    assert!(!messages[0].body_sealed.contains("/account/welcome/"));
    let token = welcome_token(f, &email).await;
    assert!(f.store.welcome_pending(&token).await.unwrap());
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let store = f.store.clone();
            let token = SecretString::new(token.expose_secret().to_string());
            tokio::spawn(async move { store.activate(&token).await.unwrap() })
        })
        .collect();
    let mut activated = 0;
    for r in racers {
        if r.await.unwrap().is_some() {
            activated += 1;
        }
    }
    assert_eq!(activated, 1, "the welcome link works exactly once");
    let active = f.store.account_by_email(&email).await.unwrap().unwrap();
    assert_eq!(active.status, AccountStatus::Active);
    assert!(!f.store.welcome_pending(&token).await.unwrap());
    // A second login of the same person signs in without creating anything.
    let again = f
        .store
        .complete_sso_login(&login(&acme, &email, "_a2", now), &cookie_keys())
        .await
        .unwrap();
    assert!(matches!(again, SsoOutcome::SignIn { created: false, .. }));
    assert_eq!(f.store.outbox(Some(&email)).await.unwrap().len(), 1);
}

pub async fn welcome_link_expires(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let email = Email::parse("late@acme.example").unwrap();
    f.store
        .complete_sso_login(
            &login(
                &acme,
                &email,
                "_late",
                identity_shared::Clock::now(&f.clock),
            ),
            &cookie_keys(),
        )
        .await
        .unwrap();
    let token = welcome_token(f, &email).await;
    f.clock.advance(WELCOME_TTL_SECS + 1);
    assert!(!f.store.welcome_pending(&token).await.unwrap());
    assert!(f.store.activate(&token).await.unwrap().is_none());
    assert_eq!(
        f.store
            .account_by_email(&email)
            .await
            .unwrap()
            .unwrap()
            .status,
        AccountStatus::Pending
    );
    f.clock.advance(OUTBOX_TTL_SECS);
    assert!(f.store.outbox(Some(&email)).await.unwrap().is_empty());
}

pub async fn replayed_assertion_is_refused_once_under_concurrency(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    f.store
        .create_account(
            &Email::parse("racer@acme.example").unwrap(),
            None,
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let store = Arc::new(f.store.clone());
    let acme = Arc::new(acme);
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            let acme = acme.clone();
            tokio::spawn(async move {
                let email = Email::parse("racer@acme.example").unwrap();
                store
                    .complete_sso_login(&login(&acme, &email, "_same", now), &cookie_keys())
                    .await
            })
        })
        .collect();
    let (mut ok, mut replayed) = (0, 0);
    for r in racers {
        match r.await.unwrap() {
            Ok(_) => ok += 1,
            Err(SsoError::Replayed) => replayed += 1,
            // A racer that lost on the account's version (the first login links it).
            Err(SsoError::Changed) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one login per assertion");
    assert!(replayed >= 1);
    // Later, sequentially: still refused while the record lives…
    let email = Email::parse("racer@acme.example").unwrap();
    assert!(matches!(
        f.store
            .complete_sso_login(&login(&acme, &email, "_same", now), &cookie_keys())
            .await,
        Err(SsoError::Replayed)
    ));
    // …and the same ID from another IdP is another assertion.
    let other = idp("other", "other.example");
    let other = f.store.add_idp(&other).await.unwrap();
    let outsider = Email::parse("x@other.example").unwrap();
    assert!(
        f.store
            .complete_sso_login(&login(&other, &outsider, "_same", now), &cookie_keys())
            .await
            .is_ok()
    );
}

/// An SP-initiated login spends its request ID in its own write: a second response to the
/// same request (another assertion ID) is refused and writes nothing.
pub async fn sp_initiated_request_answers_one_login(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    assert!(!f.store.saml_request_spent("_req1").await.unwrap());
    let email = Email::parse("sp@acme.example").unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let mut first = login(&acme, &email, "_as1", now);
    first.request_id = Some("_req1");
    f.store
        .complete_sso_login(&first, &cookie_keys())
        .await
        .unwrap();
    assert!(f.store.saml_request_spent("_req1").await.unwrap());
    let other = Email::parse("second@acme.example").unwrap();
    let mut second = login(&acme, &other, "_as2", now);
    second.request_id = Some("_req1");
    assert!(
        matches!(
            f.store.complete_sso_login(&second, &cookie_keys()).await,
            Err(SsoError::UnknownRequest)
        ),
        "{} backend",
        f.backend
    );
    assert!(f.store.account_by_email(&other).await.unwrap().is_none());
    assert!(f.store.outbox(Some(&other)).await.unwrap().is_empty());
    // The spent record lasts as long as a request could.
    f.clock.advance(REQUEST_TTL_SECS + 1);
    assert!(!f.store.saml_request_spent("_req1").await.unwrap());
}

/// An account without a password that the operator registered for the IdP owning its
/// domain (as `identity admin user add` does) comes under that IdP at its first login.
pub async fn account_without_password_comes_under_sso_at_once(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let email = Email::parse("ops@acme.example").unwrap();
    let before = f
        .store
        .create_account_for_idp(&email, None, AccountStatus::Active, Some(&acme))
        .await
        .unwrap();
    let outcome = f
        .store
        .complete_sso_login(
            &login(&acme, &email, "_np", identity_shared::Clock::now(&f.clock)),
            &cookie_keys(),
        )
        .await
        .unwrap();
    let SsoOutcome::SignIn { account, created } = outcome else {
        panic!("no confirmation for an account without a password")
    };
    assert!(!created);
    assert_eq!(account.id, before.id);
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(
        f.store
            .account(&before.id)
            .await
            .unwrap()
            .unwrap()
            .sso_idp
            .as_deref(),
        Some("acme")
    );
}

pub async fn password_account_upgrade_confirmed_revokes_its_grants(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let email = Email::parse("dev@acme.example").unwrap();
    let account = f
        .store
        .create_account(
            &email,
            Some(&SecretString::new("correct horse battery")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let scopes = Scopes::parse("read").unwrap();
    let grant = f
        .store
        .grant_for(&account.id, "client-1", &scopes)
        .await
        .unwrap();
    let outcome = f
        .store
        .complete_sso_login(
            &login(&acme, &email, "_up", identity_shared::Clock::now(&f.clock)),
            &cookie_keys(),
        )
        .await
        .unwrap();
    let SsoOutcome::ConfirmUpgrade { token, .. } = outcome else {
        panic!("a password account must confirm")
    };
    // Nothing changed yet.
    let unchanged = f.store.account(&account.id).await.unwrap().unwrap();
    assert!(unchanged.sso_idp.is_none() && unchanged.has_password());
    assert!(f.store.grant(&grant.gid).await.unwrap().unwrap().is_live());
    let pending = f.store.pending_upgrade(&token).await.unwrap().unwrap();
    assert_eq!(pending.return_to, "/somewhere");
    let linked = f.store.confirm_upgrade(&token).await.unwrap().unwrap();
    assert_eq!(linked.sso_idp.as_deref(), Some("acme"));
    assert!(!linked.has_password(), "the password no longer signs in");
    assert!(!f.store.grant(&grant.gid).await.unwrap().unwrap().is_live());
    assert!(f.store.grants_of(&account.id).await.unwrap().is_empty());
    // The confirmation works once.
    assert!(f.store.confirm_upgrade(&token).await.unwrap().is_none());
}

pub async fn password_account_upgrade_declined_stays_off_sso(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let email = Email::parse("keeps@acme.example").unwrap();
    let account = f
        .store
        .create_account(
            &email,
            Some(&SecretString::new("my own password")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let scopes = Scopes::parse("read").unwrap();
    let grant = f
        .store
        .grant_for(&account.id, "client-1", &scopes)
        .await
        .unwrap();
    let SsoOutcome::ConfirmUpgrade { token, .. } = f
        .store
        .complete_sso_login(
            &login(&acme, &email, "_dec", identity_shared::Clock::now(&f.clock)),
            &cookie_keys(),
        )
        .await
        .unwrap()
    else {
        panic!("confirmation expected")
    };
    assert!(f.store.decline_upgrade(&token).await.unwrap());
    assert!(!f.store.decline_upgrade(&token).await.unwrap());
    assert!(f.store.confirm_upgrade(&token).await.unwrap().is_none());
    let after = f.store.account(&account.id).await.unwrap().unwrap();
    assert!(after.sso_idp.is_none());
    assert!(after.has_password());
    assert!(f.store.grant(&grant.gid).await.unwrap().unwrap().is_live());
}

/// An account under one IdP is refused to another (two IdPs allowed unclaimed domains, the
/// only way two may speak for one email: an IdP that does not own a claimed domain is
/// refused before, `SsoError::OutsideDomains`).
pub async fn account_under_another_idp_is_refused_and_nothing_written(f: &Fixture) {
    let mut acme = idp("acme", "acme.example");
    acme.any_domain = true;
    let mut other = idp("other", "other.example");
    other.any_domain = true;
    let acme = f.store.add_idp(&acme).await.unwrap();
    let other = f.store.add_idp(&other).await.unwrap();
    let email = Email::parse("p@unclaimed.example").unwrap();
    let foreign = Email::parse("p@acme.example").unwrap();
    assert!(matches!(
        f.store
            .complete_sso_login(
                &login(
                    &other,
                    &foreign,
                    "_x0",
                    identity_shared::Clock::now(&f.clock)
                ),
                &cookie_keys()
            )
            .await,
        Err(SsoError::OutsideDomains)
    ));
    let now = identity_shared::Clock::now(&f.clock);
    f.store
        .complete_sso_login(&login(&acme, &email, "_x1", now), &cookie_keys())
        .await
        .unwrap();
    assert!(matches!(
        f.store
            .complete_sso_login(&login(&other, &email, "_x2", now), &cookie_keys())
            .await,
        Err(SsoError::OtherIdp)
    ));
    // The refused assertion was not recorded: it is still unused for its own IdP's records.
    let replay_count = f
        .store
        .backend()
        .scan(Table::Once, identity_shared::Clock::now(&f.clock))
        .await
        .unwrap()
        .iter()
        .filter(|i| i.pk.starts_with("saml-assertion#"))
        .count();
    assert_eq!(replay_count, 1);
}

/// Removing an IdP releases its accounts, and ends what it vouched for: their grants (so
/// every token of them) and API keys, as well as their sessions.
/// What an SSO login may come to vouch for: the CLI login's grant and an API key it made.
async fn login_and_key(
    f: &Fixture,
    account: &identity_shared::accounts::Account,
) -> (String, SecretString) {
    use identity_shared::api_keys::ApiKeys;
    let login_grant = crate::cli_login_grant(&f.store, account).await;
    let (_, key) = f
        .store
        .create_api_key(account, &login_grant, None, None)
        .await
        .unwrap();
    (login_grant, key)
}

/// That login's grant is revoked and its key acts no more.
async fn login_and_key_ended(f: &Fixture, login_grant: &str, key: &SecretString) {
    use identity_shared::api_keys::ApiKeys;
    let grant = f.store.grant(login_grant).await.unwrap().unwrap();
    assert!(
        !grant.is_live(),
        "{} backend: the grant is revoked",
        f.backend
    );
    assert!(
        f.store
            .api_key_in_use(key.expose_secret())
            .await
            .unwrap()
            .is_none(),
        "{} backend: its API keys end",
        f.backend
    );
}

pub async fn removing_an_idp_releases_its_accounts_and_revokes_their_grants_and_keys(f: &Fixture) {
    use identity_shared::oauth::Grants;
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let email = Email::parse("r@acme.example").unwrap();
    let SsoOutcome::SignIn { account, .. } = f
        .store
        .complete_sso_login(
            &login(&acme, &email, "_r", identity_shared::Clock::now(&f.clock)),
            &cookie_keys(),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let (login_grant, key) = login_and_key(f, &account).await;
    let (removed, released) = f.store.remove_idp("acme").await.unwrap().unwrap();
    assert!(
        f.store.grants_of(&account.id).await.unwrap().is_empty(),
        "{} backend: the released account's grants are revoked",
        f.backend
    );
    login_and_key_ended(f, &login_grant, &key).await;
    assert_eq!(removed.id, "acme");
    assert_eq!(released, 1);
    assert!(f.store.idp("acme").await.unwrap().is_none());
    assert!(
        f.store
            .idp_for_domain("acme.example")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.store
            .idp_by_entity_id(&acme.entity_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.store
            .account(&account.id)
            .await
            .unwrap()
            .unwrap()
            .sso_idp
            .is_none()
    );
    // The id is free again.
    f.store.add_idp(&acme).await.unwrap();
}

pub async fn password_reset_link_works_once_and_only_off_sso(f: &Fixture) {
    use identity_shared::password_reset::{PasswordResets, RESET_TTL_SECS, ResetError};
    let email = Email::parse("forgetful@plain.example").unwrap();
    let account = f
        .store
        .create_account(
            &email,
            Some(&SecretString::new("old password 123")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let base = "http://127.0.0.1:3000/account/password/reset/";
    // Unknown email: nothing written, same answer for the caller.
    let ghost = Email::parse("ghost@plain.example").unwrap();
    assert!(
        !f.store
            .request_password_reset(&ghost, base, &cookie_keys())
            .await
            .unwrap()
    );
    assert!(f.store.outbox(Some(&ghost)).await.unwrap().is_empty());
    assert!(
        f.store
            .request_password_reset(&email, base, &cookie_keys())
            .await
            .unwrap()
    );
    let token = link_token(f, &email, base).await;
    assert!(f.store.reset_pending(&token).await.unwrap());
    assert!(matches!(
        f.store
            .reset_password(&token, &SecretString::new("short"))
            .await,
        Err(ResetError::WeakPassword)
    ));
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let store = f.store.clone();
            let token = SecretString::new(token.expose_secret().to_string());
            tokio::spawn(async move {
                store
                    .reset_password(
                        &token,
                        &SecretString::new(format!("new password number {i}")),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, r) in racers.into_iter().enumerate() {
        match r.await.unwrap() {
            Ok(Some(_)) => winners.push(i),
            Ok(None) | Err(ResetError::Changed) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(winners.len(), 1, "the link works once");
    let after = f.store.account(&account.id).await.unwrap().unwrap();
    let hash = after.password_hash.unwrap();
    let hash = hash.as_str();
    assert!(identity_shared::crypto::verify_password(
        &SecretString::new(format!("new password number {}", winners[0])),
        hash
    ));
    assert!(!identity_shared::crypto::verify_password(
        &SecretString::new("old password 123"),
        hash
    ));
    // A link expires after an hour.
    f.store
        .request_password_reset(&email, base, &cookie_keys())
        .await
        .unwrap();
    let late = link_token(f, &email, base).await;
    f.clock.advance(RESET_TTL_SECS + 1);
    assert!(
        f.store
            .reset_password(&late, &SecretString::new("another long password"))
            .await
            .unwrap()
            .is_none()
    );
    // An account under SSO gets a note, never a link.
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let sso = Email::parse("sso@acme.example").unwrap();
    f.store
        .complete_sso_login(
            &login(&acme, &sso, "_pw", identity_shared::Clock::now(&f.clock)),
            &cookie_keys(),
        )
        .await
        .unwrap();
    f.store
        .request_password_reset(&sso, base, &cookie_keys())
        .await
        .unwrap();
    let note = f.store.outbox(Some(&sso)).await.unwrap()[0]
        .body(&cookie_keys())
        .unwrap();
    assert!(!note.expose_secret().contains(base));
}

/// The number of assertion IDs recorded (spent) so far.
async fn spent_assertions(f: &Fixture) -> usize {
    f.store
        .backend()
        .scan(Table::Once, identity_shared::Clock::now(&f.clock))
        .await
        .unwrap()
        .iter()
        .filter(|i| i.pk.starts_with("saml-assertion#"))
        .count()
}

/// An existing account without a password that was not registered for the IdP (made
/// before the IdP owned its domain, or for another) is not signed in: its owner gets a
/// link by email, which links it once. Until then it stays off SSO.
pub async fn unregistered_account_is_linked_only_through_the_emailed_link(f: &Fixture) {
    let email = Email::parse("early@acme.example").unwrap();
    let before = f
        .store
        .create_account(&email, None, AccountStatus::Active)
        .await
        .unwrap();
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let outcome = f
        .store
        .complete_sso_login(&login(&acme, &email, "_l1", now), &cookie_keys())
        .await
        .unwrap();
    assert!(
        matches!(outcome, SsoOutcome::ConfirmByEmail { ref account, sent: true } if account.id == before.id),
        "{outcome:?}"
    );
    let unlinked = f.store.account(&before.id).await.unwrap().unwrap();
    assert_eq!(
        unlinked.sso_idp, None,
        "nothing linked before the owner confirms"
    );
    let token = link_token(f, &email, "http://127.0.0.1:3000/sso/link/").await;
    assert_eq!(
        f.store.link_pending(&token).await.unwrap().as_deref(),
        Some("acme")
    );
    let linked = f.store.confirm_link(&token).await.unwrap().expect("linked");
    assert_eq!(linked.sso_idp.as_deref(), Some("acme"));
    assert!(
        f.store.confirm_link(&token).await.unwrap().is_none(),
        "once"
    );
    // Now the IdP signs it in.
    let outcome = f
        .store
        .complete_sso_login(&login(&acme, &email, "_l2", now), &cookie_keys())
        .await
        .unwrap();
    assert!(matches!(outcome, SsoOutcome::SignIn { created: false, .. }));
}

/// An IdP allowed to speak for unclaimed domains (`--insecure-any-domain`, such as the
/// development IdP) never takes over an existing account there, with or without a password
/// or registration, and spends nothing when refused.
pub async fn idp_never_takes_over_an_account_outside_its_domains(f: &Fixture) {
    let mut wildcard = idp("wild", "wild.example");
    wildcard.any_domain = true;
    let wildcard = f.store.add_idp(&wildcard).await.unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    for (i, (address, password)) in [
        ("victim@unclaimed.example", None),
        (
            "owner@unclaimed.example",
            Some(SecretString::new("a long password")),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let email = Email::parse(address).unwrap();
        let before = f
            .store
            .create_account_for_idp(
                &email,
                password.as_ref(),
                AccountStatus::Active,
                Some(&wildcard),
            )
            .await
            .unwrap();
        let id = format!("_t{i}");
        assert!(matches!(
            f.store
                .complete_sso_login(&login(&wildcard, &email, &id, now), &cookie_keys())
                .await,
            Err(SsoError::NotOwner)
        ));
        let after = f.store.account(&before.id).await.unwrap().unwrap();
        assert_eq!(after, before, "the account is untouched");
    }
    assert_eq!(spent_assertions(f).await, 0, "nothing written");
    // A new email of an unclaimed domain is still a (pending) JIT account.
    let newcomer = Email::parse("new@unclaimed.example").unwrap();
    let outcome = f
        .store
        .complete_sso_login(&login(&wildcard, &newcomer, "_t9", now), &cookie_keys())
        .await
        .unwrap();
    assert!(matches!(outcome, SsoOutcome::SignIn { created: true, .. }));
}

/// A domain is owned by one IdP, matched exactly and case-insensitively: no suffix or
/// prefix matches, subdomains only when listed.
pub async fn domain_ownership_is_exact_and_single(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let mut twin = idp("twin", "twin.example");
    twin.domains = vec!["acme.example".into()];
    assert!(matches!(
        f.store.add_idp(&twin).await,
        Err(identity_shared::idps::IdpError::Taken)
    ));
    assert!(
        f.store.idp("twin").await.unwrap().is_none(),
        "nothing written"
    );
    for other in [
        "evil-acme.example",
        "acme.example.evil",
        "sub.acme.example",
        "cme.example",
        "example",
    ] {
        assert!(
            f.store.idp_for_domain(other).await.unwrap().is_none(),
            "{other}"
        );
        assert!(!acme.owns(other), "{other}");
    }
    assert_eq!(
        f.store
            .idp_for_domain("ACME.Example")
            .await
            .unwrap()
            .map(|i| i.id),
        Some("acme".to_string())
    );
    assert!(acme.owns("ACME.example"));
}

/// The team an IdP's logins join is named by the operator, never inferred: an IdP with no
/// team gives no role, even on a team that happens to share its id.
pub async fn an_idp_without_a_team_gives_no_role_even_on_a_team_of_its_name(f: &Fixture) {
    let mut acme = idp("acme", "acme.example");
    acme.team = None;
    let acme = f.store.add_idp(&acme).await.unwrap();
    let namesake = f.store.create_team("acme", None).await.unwrap();
    let email = Email::parse("p@acme.example").unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let SsoOutcome::SignIn { account, .. } = f
        .store
        .complete_sso_login(&login(&acme, &email, "_n1", now), &cookie_keys())
        .await
        .unwrap()
    else {
        panic!("signed in")
    };
    assert_eq!(
        f.store
            .team_role_of(&namesake.id, &account.id)
            .await
            .unwrap(),
        None
    );
}

/// The team role is part of the login's own atomic write: when the login returns, the
/// role is there (no second write that could fail after the assertion is spent).
pub async fn the_team_role_is_written_with_the_login_itself(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let acme = f.store.add_idp(&acme).await.unwrap();
    let team = f.store.create_team("acme", None).await.unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    // A newcomer (JIT) and an account the operator registered for the IdP.
    let registered = Email::parse("reg@acme.example").unwrap();
    f.store
        .create_account_for_idp(&registered, None, AccountStatus::Active, Some(&acme))
        .await
        .unwrap();
    for (i, who) in ["new@acme.example", "reg@acme.example"].iter().enumerate() {
        let email = Email::parse(who).unwrap();
        let id = format!("_w{i}");
        let SsoOutcome::SignIn { account, .. } = f
            .store
            .complete_sso_login(&login(&acme, &email, &id, now), &cookie_keys())
            .await
            .unwrap()
        else {
            panic!("signed in")
        };
        assert_eq!(
            f.store.team_role_of(&team.id, &account.id).await.unwrap(),
            Some(TeamRole::Member),
            "{who}"
        );
    }
    // A refused login (replayed assertion) writes no role either.
    let late = Email::parse("late@acme.example").unwrap();
    assert!(matches!(
        f.store
            .complete_sso_login(&login(&acme, &late, "_w0", now), &cookie_keys())
            .await,
        Err(SsoError::Replayed)
    ));
    assert!(f.store.account_by_email(&late).await.unwrap().is_none());
}

/// Removing an IdP and registering the id again (perhaps for another organisation) gives
/// the new IdP none of the old one's accounts, even when releasing them was cut short.
pub async fn a_re_registered_idp_id_inherits_no_accounts(f: &Fixture) {
    let acme = idp("acme", "acme.example");
    let old = f.store.add_idp(&acme).await.unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let email = Email::parse("staff@acme.example").unwrap();
    let SsoOutcome::SignIn { account, .. } = f
        .store
        .complete_sso_login(&login(&old, &email, "_g1", now), &cookie_keys())
        .await
        .unwrap()
    else {
        panic!("signed in")
    };
    f.store.remove_idp("acme").await.unwrap().unwrap();
    // As if releasing the accounts had failed half-way: the account still names the IdP.
    let mut stale = f.store.account(&account.id).await.unwrap().unwrap();
    stale.sso_idp = Some("acme".into());
    stale.sso_generation = Some(old.generation.clone());
    f.store.update_account(&stale).await.unwrap();

    let mut newcomer = idp("acme", "acme.example");
    newcomer.entity_id = "https://idp.other-org.example/acme".into();
    let new = f.store.add_idp(&newcomer).await.unwrap();
    assert_ne!(new.generation, old.generation);
    let outcome = f
        .store
        .complete_sso_login(&login(&new, &email, "_g2", now), &cookie_keys())
        .await
        .unwrap();
    assert!(
        matches!(outcome, SsoOutcome::ConfirmByEmail { .. }),
        "the new IdP must not sign in the old one's account: {outcome:?}"
    );
    let after = f.store.account(&account.id).await.unwrap().unwrap();
    assert!(!after.is_under(&new));
}

/// The sign-in page's policy names every registered IdP's SSO URL, read with one query:
/// registered IdPs are listed, removed ones are not.
pub async fn idp_sso_urls_follow_registration_and_removal(f: &Fixture) {
    f.store.add_idp(&idp("acme", "acme.example")).await.unwrap();
    f.store.add_idp(&idp("idp", "other.example")).await.unwrap();
    let mut urls = f.store.idp_sso_urls().await.unwrap();
    urls.sort();
    assert_eq!(
        urls,
        [
            "https://idp.acme.example/sso",
            "https://idp.other.example/sso"
        ]
    );
    // An IdP whose id is "idp" does not confuse the operator listing either.
    assert_eq!(f.store.list_idps().await.unwrap().len(), 2);
    f.store.remove_idp("acme").await.unwrap().unwrap();
    assert_eq!(
        f.store.idp_sso_urls().await.unwrap(),
        ["https://idp.other.example/sso"]
    );
}

/// A password reset ends every session of the account (they started under the old
/// password) and revokes its OAuth grants with their refresh tokens; a session started
/// afterwards is good.
pub async fn password_reset_ends_every_session_and_revokes_grants(f: &Fixture) {
    use identity_shared::password_reset::PasswordResets;
    use identity_shared::session::Sessions;
    let email = Email::parse("reset@plain.example").unwrap();
    let account = f
        .store
        .create_account(
            &email,
            Some(&SecretString::new("old password 123")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let (old_id, _) = f.store.start_session(&account, None, 3600).await.unwrap();
    let grant = f
        .store
        .grant_for(
            &account.id,
            "some-client",
            &Scopes::parse("identity").unwrap(),
        )
        .await
        .unwrap();
    let base = "http://127.0.0.1:3000/account/password/reset/";
    assert!(
        f.store
            .request_password_reset(&email, base, &cookie_keys())
            .await
            .unwrap()
    );
    let token = link_token(f, &email, base).await;
    let after = f
        .store
        .reset_password(&token, &SecretString::new("a brand new password"))
        .await
        .unwrap()
        .unwrap();
    let old = f.store.session(&old_id).await.unwrap().expect("record");
    assert!(!old.is_current_for(&after), "the old session has ended");
    assert!(!f.store.grant(&grant.gid).await.unwrap().unwrap().is_live());
    let (new_id, _) = f.store.start_session(&after, None, 3600).await.unwrap();
    let new = f.store.session(&new_id).await.unwrap().unwrap();
    let stored = f.store.account(&after.id).await.unwrap().unwrap();
    assert!(new.is_current_for(&stored));
}

/// Moving to SSO (the upgrade confirmation) ends the sessions the password opened.
pub async fn moving_to_sso_ends_the_password_sessions(f: &Fixture) {
    use identity_shared::session::Sessions;
    let acme = f.store.add_idp(&idp("acme", "acme.example")).await.unwrap();
    let email = Email::parse("mover@acme.example").unwrap();
    let account = f
        .store
        .create_account(
            &email,
            Some(&SecretString::new("old password 123")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let (old_id, _) = f.store.start_session(&account, None, 3600).await.unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let SsoOutcome::ConfirmUpgrade { token, .. } = f
        .store
        .complete_sso_login(&login(&acme, &email, "_m1", now), &cookie_keys())
        .await
        .unwrap()
    else {
        panic!("an account with a password confirms first")
    };
    let linked = f.store.confirm_upgrade(&token).await.unwrap().unwrap();
    let old = f.store.session(&old_id).await.unwrap().expect("record");
    assert!(!old.is_current_for(&linked));
}

/// Password messages to one address are limited per hour: a stranger asking again and again
/// fills nobody's outbox, and gets the same answer.
pub async fn password_reset_messages_are_limited_per_address(f: &Fixture) {
    use identity_shared::password_reset::{MAX_RESET_MESSAGES_PER_HOUR, PasswordResets};
    let email = Email::parse("popular@plain.example").unwrap();
    f.store
        .create_account(
            &email,
            Some(&SecretString::new("old password 123")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let base = "http://127.0.0.1:3000/account/password/reset/";
    for _ in 0..MAX_RESET_MESSAGES_PER_HOUR {
        assert!(
            f.store
                .request_password_reset(&email, base, &cookie_keys())
                .await
                .unwrap()
        );
    }
    for _ in 0..5 {
        assert!(
            !f.store
                .request_password_reset(&email, base, &cookie_keys())
                .await
                .unwrap()
        );
    }
    assert_eq!(
        f.store.outbox(Some(&email)).await.unwrap().len(),
        MAX_RESET_MESSAGES_PER_HOUR
    );
    // An hour later, one more may go.
    f.clock.advance(3600);
    assert!(
        f.store
            .request_password_reset(&email, base, &cookie_keys())
            .await
            .unwrap()
    );
}

/// The emailed SSO link is limited per address too: an IdP signing in an unregistered
/// account again and again sends a few links an hour, not one per attempt.
pub async fn sso_link_messages_are_limited_per_address(f: &Fixture) {
    use identity_shared::sso::MAX_LINK_MESSAGES_PER_HOUR;
    let email = Email::parse("early@acme.example").unwrap();
    f.store
        .create_account(&email, None, AccountStatus::Active)
        .await
        .unwrap();
    let acme = f.store.add_idp(&idp("acme", "acme.example")).await.unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    for i in 0..MAX_LINK_MESSAGES_PER_HOUR + 4 {
        let id = format!("_k{i}");
        let outcome = f
            .store
            .complete_sso_login(&login(&acme, &email, &id, now), &cookie_keys())
            .await
            .unwrap();
        let written = i < MAX_LINK_MESSAGES_PER_HOUR;
        assert!(
            matches!(outcome, SsoOutcome::ConfirmByEmail { sent, .. } if sent == written),
            "attempt {i}: a message written only under the cap, and said so"
        );
    }
    assert_eq!(
        f.store.outbox(Some(&email)).await.unwrap().len(),
        MAX_LINK_MESSAGES_PER_HOUR
    );
}

/// Every move to SSO revokes what the account authorized before (refresh tokens, access
/// tokens, JWT-grant tokens: all belong to grants): the registered account's first SSO
/// login, and the emailed link.
pub async fn every_move_to_sso_revokes_the_accounts_grants(f: &Fixture) {
    let acme = f.store.add_idp(&idp("acme", "acme.example")).await.unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let read = Scopes::parse("read").unwrap();

    let registered = Email::parse("reg@acme.example").unwrap();
    let reg = f
        .store
        .create_account_for_idp(&registered, None, AccountStatus::Active, Some(&acme))
        .await
        .unwrap();
    let before = f
        .store
        .grant_for(&reg.id, "jwt-client", &read)
        .await
        .unwrap();
    f.store
        .complete_sso_login(&login(&acme, &registered, "_mv1", now), &cookie_keys())
        .await
        .unwrap();
    assert!(
        !f.store.grant(&before.gid).await.unwrap().unwrap().is_live(),
        "{}: the registered account's move revoked its grant",
        f.backend
    );

    let early = Email::parse("early@acme.example").unwrap();
    let unreg = f
        .store
        .create_account(&early, None, AccountStatus::Active)
        .await
        .unwrap();
    let before = f
        .store
        .grant_for(&unreg.id, "jwt-client", &read)
        .await
        .unwrap();
    f.store
        .complete_sso_login(&login(&acme, &early, "_mv2", now), &cookie_keys())
        .await
        .unwrap();
    assert!(
        f.store.grant(&before.gid).await.unwrap().unwrap().is_live(),
        "nothing moves before the owner follows the link"
    );
    let token = link_token(f, &early, "http://127.0.0.1:3000/sso/link/").await;
    f.store.confirm_link(&token).await.unwrap().expect("linked");
    assert!(
        !f.store.grant(&before.gid).await.unwrap().unwrap().is_live(),
        "{}: the link's move revoked its grant",
        f.backend
    );
}

/// An IdP registered for a domain releases the accounts of that domain an any-domain IdP
/// made (while no IdP owned it), with everything that IdP vouched for: their grants are
/// revoked, their sessions and API keys end. The domain's real IdP then reaches them by its
/// own rules (here the emailed link), instead of being refused as "another IdP".
pub async fn an_idp_claiming_a_domain_releases_the_accounts_an_any_domain_idp_made_there(
    f: &Fixture,
) {
    let lab = Idp {
        domains: vec![],
        any_domain: true,
        team: None,
        ..idp("lab", "lab.example")
    };
    let lab = f.store.add_idp(&lab).await.unwrap();
    let email = Email::parse("claimed@acme.example").unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let SsoOutcome::SignIn { account, created } = f
        .store
        .complete_sso_login(&login(&lab, &email, "_lab", now), &cookie_keys())
        .await
        .unwrap()
    else {
        panic!("the any-domain IdP makes the account")
    };
    assert!(created);
    let (login_grant, key) = login_and_key(f, &account).await;

    let acme = f
        .store
        .add_idp(&Idp {
            team: None,
            ..idp("acme", "acme.example")
        })
        .await
        .unwrap();
    let released = f.store.account(&account.id).await.unwrap().unwrap();
    assert_eq!(
        released.sso_idp, None,
        "{} backend: released from the any-domain IdP",
        f.backend
    );
    assert!(
        released.session_epoch > account.session_epoch,
        "its sessions end"
    );
    login_and_key_ended(f, &login_grant, &key).await;
    // The any-domain IdP signs it in no more (the domain is acme's now); the domain's IdP
    // asks the owner by email.
    assert!(matches!(
        f.store
            .complete_sso_login(&login(&lab, &email, "_lab2", now), &cookie_keys())
            .await,
        Err(SsoError::OutsideDomains)
    ));
    assert!(matches!(
        f.store
            .complete_sso_login(&login(&acme, &email, "_acme", now), &cookie_keys())
            .await
            .unwrap(),
        SsoOutcome::ConfirmByEmail { .. }
    ));
}

/// A login through the account's IdP with a persistent NameID binds the account to it; a
/// later one naming another persistent NameID for the same email is refused and changes
/// nothing. NameIDs of other formats (email, transient) neither bind nor refuse.
pub async fn a_persistent_name_id_binds_the_account_and_another_for_its_email_is_refused(
    f: &Fixture,
) {
    use identity_shared::session::SamlSubject;
    let acme = f.store.add_idp(&idp("acme", "acme.example")).await.unwrap();
    let email = Email::parse("pat@acme.example").unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let named = |name_id: &str, format: &str| SamlSubject {
        name_id: name_id.into(),
        format: Some(format.into()),
        name_qualifier: None,
        sp_name_qualifier: None,
        session_index: None,
    };
    let persistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
    let first = named("00u1pat", persistent);
    let SsoOutcome::SignIn { account, .. } = f
        .store
        .complete_sso_login(
            &SsoLogin {
                subject: Some(&first),
                ..login(&acme, &email, "_n1", now)
            },
            &cookie_keys(),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(account.sso_name_id.as_deref(), Some("00u1pat"));
    let other = named("00u9someone-else", persistent);
    assert!(
        matches!(
            f.store
                .complete_sso_login(
                    &SsoLogin {
                        subject: Some(&other),
                        ..login(&acme, &email, "_n2", now)
                    },
                    &cookie_keys(),
                )
                .await,
            Err(SsoError::OtherPerson)
        ),
        "{} backend: another person for the same email",
        f.backend
    );
    let transient = named("_t4", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient");
    for (id, subject) in [("_n3", &first), ("_n4", &transient)] {
        assert!(matches!(
            f.store
                .complete_sso_login(
                    &SsoLogin {
                        subject: Some(subject),
                        ..login(&acme, &email, id, now)
                    },
                    &cookie_keys(),
                )
                .await
                .unwrap(),
            SsoOutcome::SignIn { .. }
        ));
    }
    let after = f.store.account(&account.id).await.unwrap().unwrap();
    assert_eq!(after.sso_name_id.as_deref(), Some("00u1pat"));
}

/// A confirmation (the upgrade's password, the emailed link) moves the account only while
/// the IdP still owns the account's domain: an IdP record whose domains changed since the
/// login is refused, and the account stays as it was.
pub async fn confirmations_recheck_that_the_idp_still_owns_the_domain(f: &Fixture) {
    use identity_shared::store::{Cond, Item, Op};
    let acme = f.store.add_idp(&idp("acme", "acme.example")).await.unwrap();
    let now = identity_shared::Clock::now(&f.clock);
    let with_password = Email::parse("pw@acme.example").unwrap();
    f.store
        .create_account(
            &with_password,
            Some(&SecretString::new("my own password")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let SsoOutcome::ConfirmUpgrade { token, .. } = f
        .store
        .complete_sso_login(&login(&acme, &with_password, "_c1", now), &cookie_keys())
        .await
        .unwrap()
    else {
        panic!("confirmation expected")
    };
    let without = Email::parse("nopw@acme.example").unwrap();
    let bare = f
        .store
        .create_account(&without, None, AccountStatus::Active)
        .await
        .unwrap();
    let SsoOutcome::ConfirmByEmail { sent: true, .. } = f
        .store
        .complete_sso_login(&login(&acme, &without, "_c2", now), &cookie_keys())
        .await
        .unwrap()
    else {
        panic!("an emailed link expected")
    };
    let link = link_token(f, &without, "http://127.0.0.1:3000/sso/link/").await;
    // The IdP's record no longer lists the domain (same generation).
    let narrowed = Idp {
        domains: vec!["other.example".into()],
        version: acme.version + 1,
        ..acme.clone()
    };
    f.store
        .write(vec![Op::Put {
            table: Table::Accounts,
            item: Item::new("idp#acme".to_string(), "idp", &narrowed)
                .unwrap()
                .with_version(narrowed.version),
            cond: Cond::Version(acme.version),
        }])
        .await
        .unwrap();
    assert!(
        matches!(
            f.store.confirm_upgrade(&token).await,
            Err(SsoError::NotOwner)
        ),
        "{} backend: the upgrade",
        f.backend
    );
    assert!(
        matches!(f.store.confirm_link(&link).await, Err(SsoError::NotOwner)),
        "{} backend: the emailed link",
        f.backend
    );
    let pw = f
        .store
        .account_by_email(&with_password)
        .await
        .unwrap()
        .unwrap();
    assert!(pw.sso_idp.is_none() && pw.has_password());
    assert!(
        f.store
            .account(&bare.id)
            .await
            .unwrap()
            .unwrap()
            .sso_idp
            .is_none()
    );
}
