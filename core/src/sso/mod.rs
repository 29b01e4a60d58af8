//! Single sign-on's decisions: what an SSO login does with the account its email names
//! (just-in-time creation, sign-in, linking, confirmation by email or password, refusal),
//! and what a confirmed upgrade or emailed link may do (team roles: `org`).
//! [`complete`] is an SSO login as one plan: the facts loaded (the account, the IdP it is
//! under now, who owns the email's domain, its grants, its organisations), the path
//! [`login`] picks, and every write that path makes, in one atomic write with the spent
//! request and the assertion's replay record.

pub mod complete;
pub mod confirm;
pub use complete::{Assertion, Completed, Fresh, Loaded, Message, Refused, complete, speaks_for};

pub use crate::role::Role;

/// What the store holds for the email a login asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing<'a> {
    /// No account has this email.
    None,
    Account {
        /// The IdP the account is under now (as the generation it came under), if any.
        current_idp: Option<&'a str>,
        has_password: bool,
        /// An operator registered the account for this IdP (this generation of it).
        registered_for_this_idp: bool,
    },
}

/// What the login does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// A new account, pending until its welcome link is followed, under this IdP.
    Create,
    /// The account is under this IdP: sign in.
    SignIn,
    /// A password-less account the operator registered for this IdP: it comes under the
    /// IdP now (its earlier grants revoked), and signs in.
    LinkRegistered,
    /// A password-less account nobody registered for this IdP: its owner confirms by the
    /// emailed link; no session now.
    ConfirmByEmail,
    /// An account with a password: its owner confirms with that password once.
    ConfirmUpgrade,
}

/// Why the login is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The account is under another IdP.
    OtherIdp,
    /// The IdP does not own the email's domain, and the account is not under it.
    NotOwner,
}

/// The rule of an SSO login for `idp` (whose domains include the email's when
/// `idp_owns_domain`).
pub fn login(existing: &Existing<'_>, idp: &str, idp_owns_domain: bool) -> Result<Path, Refusal> {
    let Existing::Account {
        current_idp,
        has_password,
        registered_for_this_idp,
    } = existing
    else {
        return Ok(Path::Create);
    };
    match current_idp {
        Some(current) if *current == idp => Ok(Path::SignIn),
        Some(_) => Err(Refusal::OtherIdp),
        // An IdP never takes over an account outside the domains it owns.
        None if !idp_owns_domain => Err(Refusal::NotOwner),
        None if !has_password && *registered_for_this_idp => Ok(Path::LinkRegistered),
        None if !has_password => Ok(Path::ConfirmByEmail),
        None => Ok(Path::ConfirmUpgrade),
    }
}

/// The NameID format that names one person for good (SAML core §8.3.7); other formats
/// (email, transient, unspecified) say nothing an email does not.
pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

/// What a login through the account's own IdP does with the persistent NameID it carries
/// (`asserted`, `None` when the NameID is not persistent), given the one the account is
/// bound to: `Ok(Some(id))` binds it (the first persistent NameID), `Ok(None)` changes
/// nothing, another NameID is refused.
pub fn bind_name_id<'a>(
    bound: Option<&str>,
    asserted: Option<&'a str>,
) -> Result<Option<&'a str>, NameIdMismatch> {
    match (bound, asserted) {
        (_, None) => Ok(None),
        (None, Some(new)) => Ok(Some(new)),
        (Some(old), Some(new)) if old == new => Ok(None),
        (Some(_), Some(_)) => Err(NameIdMismatch),
    }
}

/// The IdP named another person (persistent NameID) for the account's email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameIdMismatch;

/// How many SSO-link messages an address may get in an hour: an IdP cannot fill the
/// owner's outbox.
pub const MAX_LINK_MESSAGES_PER_HOUR: usize = 3;

/// Whether another link may be sent, given how many went in the last hour.
pub fn may_send_link(sent_last_hour: usize) -> bool {
    sent_last_hour < MAX_LINK_MESSAGES_PER_HOUR
}

/// A confirmed move to SSO (the upgrade's password, or the emailed link) for `idp`, given
/// the IdP the account is under now: `Ok(true)` links it, `Ok(false)` means it already is
/// under that IdP (nothing to do), another IdP refuses.
pub fn confirmed_move(current_idp: Option<&str>, idp: &str) -> Result<bool, Refusal> {
    match current_idp {
        None => Ok(true),
        Some(current) if current == idp => Ok(false),
        Some(_) => Err(Refusal::OtherIdp),
    }
}

/// An upgrade confirmed with the account's password moves an account that is under no IdP;
/// under any IdP (this one too: another confirmation won) it is refused.
pub fn upgrade(current_idp: Option<&str>) -> Result<(), Refusal> {
    match current_idp {
        None => Ok(()),
        Some(_) => Err(Refusal::OtherIdp),
    }
}

/// Where the sign-in page sends an email: the IdP the account is under; else its password,
/// when the account (not under SSO) has one and one was typed; else the IdP of the email's
/// domain (`domain_idp`). `None`: the password is asked for.
pub fn sign_in_idp(
    account: Option<&crate::account::Account>,
    domain_idp: Option<&str>,
    with_password: bool,
) -> Option<String> {
    match account.and_then(|a| a.sso_idp.as_deref()) {
        Some(id) => Some(id.to_string()),
        None if with_password && account.is_some_and(|a| a.has_password()) => None,
        None => domain_idp.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_persistent_name_id_binds_the_account_and_another_is_refused() {
        assert_eq!(bind_name_id(None, Some("p-1")), Ok(Some("p-1")));
        assert_eq!(bind_name_id(Some("p-1"), Some("p-1")), Ok(None));
        assert_eq!(bind_name_id(Some("p-1"), None), Ok(None));
        assert_eq!(bind_name_id(None, None), Ok(None));
        assert_eq!(bind_name_id(Some("p-1"), Some("p-2")), Err(NameIdMismatch));
    }

    fn account(current_idp: Option<&str>, has_password: bool, registered: bool) -> Existing<'_> {
        Existing::Account {
            current_idp,
            has_password,
            registered_for_this_idp: registered,
        }
    }

    #[test]
    fn an_unknown_email_gets_a_new_pending_account() {
        assert_eq!(login(&Existing::None, "acme", true), Ok(Path::Create));
    }

    #[test]
    fn an_account_under_this_idp_signs_in_and_under_another_is_refused() {
        assert_eq!(
            login(&account(Some("acme"), true, false), "acme", true),
            Ok(Path::SignIn)
        );
        assert_eq!(
            login(&account(Some("other"), false, true), "acme", true),
            Err(Refusal::OtherIdp)
        );
    }

    #[test]
    fn an_idp_never_takes_over_an_account_outside_its_domains() {
        for (password, registered) in [(false, true), (false, false), (true, false)] {
            assert_eq!(
                login(&account(None, password, registered), "acme", false),
                Err(Refusal::NotOwner)
            );
        }
    }

    #[test]
    fn a_registered_password_less_account_links_at_once() {
        assert_eq!(
            login(&account(None, false, true), "acme", true),
            Ok(Path::LinkRegistered)
        );
    }

    #[test]
    fn an_unregistered_password_less_account_confirms_by_email() {
        assert_eq!(
            login(&account(None, false, false), "acme", true),
            Ok(Path::ConfirmByEmail)
        );
        assert!(may_send_link(2));
        assert!(!may_send_link(MAX_LINK_MESSAGES_PER_HOUR));
    }

    #[test]
    fn an_account_with_a_password_confirms_with_it_even_when_registered() {
        for registered in [false, true] {
            assert_eq!(
                login(&account(None, true, registered), "acme", true),
                Ok(Path::ConfirmUpgrade)
            );
        }
    }

    #[test]
    fn a_confirmed_move_links_once_and_never_over_another_idp() {
        assert_eq!(confirmed_move(None, "acme"), Ok(true));
        assert_eq!(confirmed_move(Some("acme"), "acme"), Ok(false));
        assert_eq!(
            confirmed_move(Some("other"), "acme"),
            Err(Refusal::OtherIdp)
        );
    }

    #[test]
    fn an_upgrade_moves_only_an_account_under_no_idp() {
        assert_eq!(upgrade(None), Ok(()));
        assert_eq!(upgrade(Some("acme")), Err(Refusal::OtherIdp));
    }

    #[test]
    fn an_account_under_sso_signs_in_at_its_idp_and_a_password_account_may_keep_its_password() {
        use crate::account::{AccountStatus, Email, new_account};
        use crate::digest::Digest;
        let email = Email::parse("a@example.com").unwrap();
        let mut under = new_account("a1", &email, None, AccountStatus::Active, None, 0);
        under.sso_idp = Some("okta".into());
        for typed in [true, false] {
            let idp = sign_in_idp(Some(&under), Some("other"), typed);
            assert_eq!(idp.as_deref(), Some("okta"));
        }
        let hash = Some(Digest::new("$argon2id$x"));
        let with_password = new_account("a2", &email, hash, AccountStatus::Active, None, 0);
        assert_eq!(sign_in_idp(Some(&with_password), Some("okta"), true), None);
        let to_domain = sign_in_idp(Some(&with_password), Some("okta"), false);
        assert_eq!(to_domain.as_deref(), Some("okta"));
        assert_eq!(
            sign_in_idp(None, Some("okta"), true).as_deref(),
            Some("okta")
        );
        assert_eq!(sign_in_idp(None, None, true), None);
    }
}
