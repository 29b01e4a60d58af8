//! The confirmations that finish a move to SSO, and the welcome link, as plans: each
//! consumes its single-use record (`Cond::Live`: a used or expired link writes nothing) in
//! the same write as what it authorizes. A move revokes the account's grants, ends its
//! sessions and API keys *in that write*, and gives the IdP's organisation roles.

use super::complete::{Loaded, PendingUpgrade, org_ops, persistent_name_id};
use super::{Refusal, confirmed_move, upgrade};
use crate::account::{self, Account, AccountStatus};
use crate::grant::{self, Grant};
use crate::idp::Idp;
use crate::plan::Plan;
use crate::store::{StoreError, once};

/// What is loaded for a confirmation: the account its record names, the IdP as of the
/// record's generation, the IdP the account is under now, its live grants, and the IdP's
/// organisations (`Loaded::team`, `Loaded::enterprise`).
#[derive(Debug, Clone, Default)]
pub struct Confirming {
    pub account: Option<Account>,
    pub idp: Option<Idp>,
    pub current_idp: Option<String>,
    pub grants: Vec<Grant>,
    pub orgs: Loaded,
}

/// Why a confirmation is refused; nothing is written (the link stays usable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unconfirmed {
    /// The IdP no longer owns the account's email domain.
    NotOwner,
    /// The account came under another IdP meanwhile.
    OtherIdp,
}

/// What a confirmation comes to: the account as it will be, `None` when its record, its
/// account or its IdP is gone.
pub type Confirmed = Result<Option<Account>, Unconfirmed>;

/// The account and IdP a confirmation needs, with the ownership rule: a move happens only
/// while the IdP still owns the account's domain.
fn parties(c: &Confirming) -> Result<Option<(&Account, &Idp)>, Unconfirmed> {
    let (Some(account), Some(idp)) = (&c.account, &c.idp) else {
        return Ok(None);
    };
    if !idp.owns(account.email_domain()) {
        return Err(Unconfirmed::NotOwner);
    }
    Ok(Some((account, idp)))
}

/// The owner confirmed an upgrade with the account's password: the account (under no IdP)
/// comes under the IdP, its password dropped (it no longer signs in), its sessions, API
/// keys and grants ended; the pending record (`kind`/`key`) is consumed.
pub fn upgrade_confirmed(
    key: &str,
    pending: Option<&PendingUpgrade>,
    c: Confirming,
    now: i64,
) -> Result<Plan<Confirmed>, StoreError> {
    let Some(pending) = pending else {
        return Ok(Plan::answer(Ok(None)));
    };
    let (account, idp) = match parties(&c) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(Plan::answer(Ok(None))),
        Err(r) => return Ok(Plan::answer(Err(r))),
    };
    if let Err(Refusal::OtherIdp | Refusal::NotOwner) = upgrade(c.current_idp.as_deref()) {
        return Ok(Plan::answer(Err(Unconfirmed::OtherIdp)));
    }
    let mut linked = account.clone();
    linked.put_under(idp);
    linked.password_hash = None;
    linked.sso_name_id = persistent_name_id(pending.subject.as_ref()).map(str::to_string);
    linked.end_all_sessions();
    linked.end_api_keys();
    let (op, next) = account::update_op(&linked)?;
    let mut ops = vec![once::consume(super::complete::UPGRADE_KIND, key)];
    ops.extend(grant::revoke_all(&c.grants, now)?);
    ops.push(op);
    ops.extend(org_ops(&c.orgs, &next)?);
    Ok(Plan::write(ops, Ok(Some(next))))
}

/// The owner followed the emailed link: the account comes under the IdP as if the operator
/// had registered it, its sessions, API keys and grants ended; the link is consumed. An
/// account already under that IdP needs nothing (the link stays unused).
pub fn link_confirmed(key: &str, c: Confirming, now: i64) -> Result<Plan<Confirmed>, StoreError> {
    let (account, idp) = match parties(&c) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(Plan::answer(Ok(None))),
        Err(r) => return Ok(Plan::answer(Err(r))),
    };
    match confirmed_move(c.current_idp.as_deref(), &idp.id) {
        Err(_) => return Ok(Plan::answer(Err(Unconfirmed::OtherIdp))),
        Ok(false) => return Ok(Plan::answer(Ok(Some(account.clone())))),
        Ok(true) => {}
    }
    let mut linked = account.clone();
    linked.put_under(idp);
    linked.end_all_sessions();
    linked.end_api_keys();
    linked.registered_idp = Some(idp.id.clone());
    linked.registered_generation = Some(idp.generation.clone());
    let (op, next) = account::update_op(&linked)?;
    let mut ops = vec![once::consume(super::complete::LINK_KIND, key)];
    ops.extend(grant::revoke_all(&c.grants, now)?);
    ops.push(op);
    Ok(Plan::write(ops, Ok(Some(next))))
}

/// The welcome link: a pending account becomes active, the link consumed.
pub fn welcomed(key: &str, account: Option<Account>) -> Result<Plan<Option<Account>>, StoreError> {
    let Some(account) = account else {
        return Ok(Plan::answer(None));
    };
    let mut ops = vec![once::consume(super::complete::WELCOME_KIND, key)];
    let next = if account.status == AccountStatus::Active {
        account
    } else {
        let mut active = account.clone();
        active.status = AccountStatus::Active;
        let (op, next) = account::update_op(&active)?;
        ops.push(op);
        next
    };
    Ok(Plan::write(ops, Some(next)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Email;
    use crate::store::{Cond, Op};

    fn idp() -> Idp {
        serde_json::from_value(serde_json::json!({
            "id": "acme", "entity_id": "https://acme.example/idp",
            "sso_url": "https://acme.example/sso", "certificates": ["x"],
            "domains": ["acme.example"], "generation": "g1", "created_at": 0,
        }))
        .unwrap()
    }

    fn confirming(email: &str) -> Confirming {
        let email = Email::parse(email).unwrap();
        let hash = Some(crate::digest::Digest::new("$argon2id$x"));
        Confirming {
            account: Some(account::new_account(
                "a1",
                &email,
                hash,
                AccountStatus::Active,
                None,
                0,
            )),
            idp: Some(idp()),
            current_idp: None,
            grants: vec![crate::grant::sample("g", 1)],
            orgs: Loaded::default(),
        }
    }

    fn pending() -> PendingUpgrade {
        PendingUpgrade {
            account_id: "a1".into(),
            idp: "acme".into(),
            generation: "g1".into(),
            return_to: "/".into(),
            subject: None,
        }
    }

    #[test]
    fn a_confirmed_upgrade_drops_the_password_and_revokes_grants_in_the_write_that_consumes_it() {
        let plan =
            upgrade_confirmed("k", Some(&pending()), confirming("p@acme.example"), 9).unwrap();
        let Ok(Some(next)) = &plan.outcome else {
            panic!("{:?}", plan.outcome)
        };
        assert!(!next.has_password());
        assert_eq!(next.sso_idp.as_deref(), Some("acme"));
        assert!(matches!(
            plan.ops.as_slice(),
            [
                Op::Delete {
                    cond: Cond::Live,
                    ..
                },
                Op::Put { .. },
                Op::Delete { .. },
                Op::Put { .. }
            ]
        ));
    }

    #[test]
    fn a_confirmation_moves_nothing_once_the_idp_no_longer_owns_the_domain() {
        let plan = link_confirmed("k", confirming("p@elsewhere.example"), 9).unwrap();
        assert_eq!(plan, Plan::answer(Err(Unconfirmed::NotOwner)));
    }

    #[test]
    fn a_link_for_an_account_already_under_the_idp_writes_nothing_and_one_under_another_is_refused()
    {
        let mut c = confirming("p@acme.example");
        c.current_idp = Some("acme".into());
        let plan = link_confirmed("k", c.clone(), 9).unwrap();
        assert!(plan.ops.is_empty());
        c.current_idp = Some("other".into());
        let plan = link_confirmed("k", c, 9).unwrap();
        assert_eq!(plan, Plan::answer(Err(Unconfirmed::OtherIdp)));
    }

    #[test]
    fn a_welcome_link_activates_a_pending_account_once() {
        let email = Email::parse("p@acme.example").unwrap();
        let pending = account::new_account("a1", &email, None, AccountStatus::Pending, None, 0);
        let plan = welcomed("k", Some(pending)).unwrap();
        assert_eq!(plan.outcome.unwrap().status, AccountStatus::Active);
        assert_eq!(plan.ops.len(), 2);
        assert_eq!(welcomed("k", None).unwrap(), Plan::answer(None));
    }
}
