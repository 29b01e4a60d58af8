//! Who gets an add-on SSO form: a signed-in person whose account is active, for an add-on
//! that exists, holding any role on the add-on's app, whose identity can be sent without
//! ambiguity (the token formula joins fields with `:`).

use crate::sso::Role;

/// What was loaded for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The account is pending (welcome link not followed yet).
    pub pending: bool,
    /// `None`: no such add-on (or its app is gone); else the person's role on the app.
    pub role: Option<Option<Role>>,
    /// The person's user id and email can be put in the form (no `:` to re-split).
    pub sendable: bool,
}

/// Why no form is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The "activate your account" page.
    Activate,
    NoSuchAddon,
    NoRole,
    NotSendable,
}

/// The rule, checked in this order; the role the form is issued under.
pub fn access(facts: Facts) -> Result<Role, Refusal> {
    if facts.pending {
        return Err(Refusal::Activate);
    }
    let role = facts.role.ok_or(Refusal::NoSuchAddon)?;
    let role = role.ok_or(Refusal::NoRole)?;
    if !facts.sendable {
        return Err(Refusal::NotSendable);
    }
    Ok(role)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Facts = Facts {
        pending: false,
        role: Some(Some(Role::Collaborator)),
        sendable: true,
    };

    #[test]
    fn any_role_on_the_app_gets_the_form() {
        for role in [Role::Owner, Role::Admin, Role::Member, Role::Collaborator] {
            let facts = Facts {
                role: Some(Some(role)),
                ..OK
            };
            assert_eq!(access(facts), Ok(role));
        }
    }

    #[test]
    fn a_pending_account_is_asked_to_activate_first() {
        let facts = Facts {
            pending: true,
            ..OK
        };
        assert_eq!(access(facts), Err(Refusal::Activate));
    }

    #[test]
    fn no_add_on_no_role_or_an_unsendable_identity_gets_no_form() {
        assert_eq!(
            access(Facts { role: None, ..OK }),
            Err(Refusal::NoSuchAddon)
        );
        assert_eq!(
            access(Facts {
                role: Some(None),
                ..OK
            }),
            Err(Refusal::NoRole)
        );
        assert_eq!(
            access(Facts {
                sendable: false,
                ..OK
            }),
            Err(Refusal::NotSendable)
        );
    }
}
