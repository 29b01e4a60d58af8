//! The JWT bearer grant's rules (RFC 7523 §3) that need no key: the assertion's audience
//! and times, the user it names, and the scope it may get. The signature is checked before
//! these, by the caller (with the client's registered certificates).

/// The claims the grant reads. `iss` and `sub` are as sent until the signature verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
}

/// `exp` may be at most this far ahead of now.
pub const MAX_LIFETIME_SECS: i64 = 300;
/// Skew allowed for `nbf` and `iat`.
pub const CLOCK_SKEW_SECS: i64 = 60;

impl Claims {
    /// `aud`, then `exp` (required, not past, at most [`MAX_LIFETIME_SECS`] ahead), then
    /// `nbf` and `iat` (not in the future, with [`CLOCK_SKEW_SECS`]). The refusal is the
    /// `invalid_grant` description.
    pub fn check(&self, audiences: &[String], now: i64) -> Result<(), String> {
        let expected = audiences
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" or ");
        if self.aud.is_empty() {
            return Err(format!("the assertion has no aud; it must be {expected}"));
        }
        if !self.aud.iter().any(|a| audiences.contains(a)) {
            return Err(format!(
                "the assertion's aud is not this server; it must be {expected}"
            ));
        }
        let exp = self
            .exp
            .ok_or("the assertion has no exp; it must expire within 5 minutes")?;
        if exp <= now {
            return Err("the assertion has expired (exp)".into());
        }
        if exp > now + MAX_LIFETIME_SECS {
            return Err(
                "the assertion's exp is more than 5 minutes ahead; make it short-lived".into(),
            );
        }
        if self.nbf.is_some_and(|nbf| nbf > now + CLOCK_SKEW_SECS) {
            return Err("the assertion is not valid yet (nbf)".into());
        }
        if self.iat.is_some_and(|iat| iat > now + CLOCK_SKEW_SECS) {
            return Err("the assertion was issued in the future (iat)".into());
        }
        Ok(())
    }
}

/// What the store says of the user the assertion's `sub` names, for this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub pre_authorized: bool,
    pub blocked: bool,
    pub active: bool,
}

/// Why the user gets no token (`invalid_grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRefusal {
    Unknown,
    NotPreAuthorized,
    Blocked,
    NotActive,
}

impl UserRefusal {
    pub fn description(self) -> &'static str {
        match self {
            UserRefusal::Unknown => "sub names no user of this service",
            UserRefusal::NotPreAuthorized => "user is not pre-authorized for this client",
            UserRefusal::Blocked => "the user's account is blocked",
            UserRefusal::NotActive => "the user's account is not activated yet",
        }
    }
}

/// The rule for the user: one that exists, is pre-authorized for the client, is not
/// blocked, and is active (not pending), in that order. `user` pairs what the rule reads
/// with the caller's record of the user, which a pass hands back.
pub fn user_may_have_token<A>(user: Option<(User, A)>) -> Result<A, UserRefusal> {
    let (user, account) = user.ok_or(UserRefusal::Unknown)?;
    if !user.pre_authorized {
        return Err(UserRefusal::NotPreAuthorized);
    }
    if user.blocked {
        return Err(UserRefusal::Blocked);
    }
    if !user.active {
        return Err(UserRefusal::NotActive);
    }
    Ok(account)
}

/// The scope the token gets: the requested one, which must lie within the client's (each
/// name once, in the order asked); none requested is all of the client's. The refusal
/// names the first scope outside (`invalid_scope`).
pub fn granted_scope(requested: Option<&str>, allowed: &[String]) -> Result<String, String> {
    let Some(requested) = requested else {
        return Ok(allowed.join(" "));
    };
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(s.to_string());
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out.join(" "))
}

/// The single-use kind `jti`s are consumed under (`{client_id}\n{jti}`, hashed).
pub const JTI_KIND: &str = "jwt-jti";

/// A verified assertion's request: its client (already identified and its signature
/// checked), the `jti` key and until when it is held, the scope asked for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub client_id: &'a str,
    pub client_scopes: &'a [String],
    /// The key `jti` is consumed under, and the assertion's `exp` (how long it is held).
    pub jti: Option<(&'a str, i64)>,
    pub requested_scope: Option<&'a str>,
    /// The id a new grant gets (random, made by the caller).
    pub fresh_gid: &'a str,
}

/// What is loaded for a verified assertion.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The account `sub` names (`None`: no such account, or `sub` is no email).
    pub account: Option<crate::account::Account>,
    /// Whether `sub` is an email at all.
    pub sub_is_email: bool,
    /// Whether the client pre-authorized that account.
    pub pre_authorized: bool,
    /// The account's grant for the client, as held now.
    pub held: Option<crate::grant::Held>,
    /// Whether the `jti` was consumed before; `None`: not read (the write's condition
    /// judges it, and a conflict loads it).
    pub jti_used: Option<bool>,
}

/// Why no token is issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The `jti` was used before (nothing is written).
    JtiReused,
    /// `sub` is no email (`invalid_grant`).
    SubNotEmail,
    User(UserRefusal),
    /// A scope outside the client's (`invalid_scope`): the first such.
    ScopeOutside(String),
}

/// A token may be issued: for the account, on its grant for the client, with this scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub account: crate::account::Account,
    pub grant: crate::grant::Grant,
    pub scope: String,
}

/// The grant's rules after the signature and the claims' times (RFC 7523 §3, fosite's
/// order): the `jti` is consumed once (a refusal after it consumes it all the same, so an
/// assertion is never tried twice); `sub` is an email; the user may have a token
/// ([`user_may_have_token`]); the scope lies within the client's ([`granted_scope`]); the
/// token belongs to the account's grant for the client (widened or made in the same write,
/// so deauthorizing the user or revoking the grant reaches it).
pub fn grant(
    req: Request<'_>,
    loaded: Loaded,
    now: i64,
) -> Result<crate::plan::Plan<Decided>, crate::store::StoreError> {
    let account_id = loaded.account.as_ref().map(|a| a.id.clone());
    Ok(decide(req, loaded, now)?.map(|result| Decided { account_id, result }))
}

/// What [`grant`] decided, with the account `sub` named (for the login history, refused or
/// not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub account_id: Option<crate::ids::AccountId>,
    pub result: Result<Granted, Refused>,
}

fn decide(
    req: Request<'_>,
    loaded: Loaded,
    now: i64,
) -> Result<crate::plan::Plan<Result<Granted, Refused>>, crate::store::StoreError> {
    use crate::plan::Plan;
    if loaded.jti_used == Some(true) {
        return Ok(Plan::answer(Err(Refused::JtiReused)));
    }
    let mut ops = Vec::new();
    if let Some((key, exp)) = req.jti {
        ops.push(crate::store::once::used(JTI_KIND, key, exp)?);
    }
    let refuse = |ops, r| Ok(Plan::write(ops, Err(r)));
    if !loaded.sub_is_email {
        return refuse(ops, Refused::SubNotEmail);
    }
    let user = loaded.account.map(|a| {
        let facts = User {
            pre_authorized: loaded.pre_authorized,
            blocked: a.is_blocked(),
            active: a.status == crate::account::AccountStatus::Active,
        };
        (facts, a)
    });
    let account = match user_may_have_token(user) {
        Ok(a) => a,
        Err(r) => return refuse(ops, Refused::User(r)),
    };
    let scope = match granted_scope(req.requested_scope, req.client_scopes) {
        Ok(s) => s,
        Err(outside) => return refuse(ops, Refused::ScopeOutside(outside)),
    };
    let scopes = crate::scope::Scopes::parse(&scope).unwrap_or_default();
    let held = loaded.held.unwrap_or(crate::grant::Held {
        pointer: None,
        current: None,
    });
    let wanted = crate::grant::Wanted {
        account_id: &account.id,
        client_id: req.client_id,
        scopes: &scopes,
        fresh_gid: req.fresh_gid,
    };
    let grant = crate::grant::widen_or_make(held, wanted, now)?;
    ops.extend(grant.ops);
    Ok(Plan::write(
        ops,
        Ok(Granted {
            account,
            grant: grant.outcome,
            scope,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;

    fn request<'a>(scopes: &'a [String], requested: Option<&'a str>) -> Request<'a> {
        Request {
            client_id: "ci",
            client_scopes: scopes,
            jti: Some(("k", 100)),
            requested_scope: requested,
            fresh_gid: "new",
        }
    }

    fn user(pre_authorized: bool) -> Loaded {
        let email = crate::account::Email::parse("u@example.com").unwrap();
        let account = crate::account::new_account(
            "a1",
            &email,
            None,
            crate::account::AccountStatus::Active,
            None,
            0,
        );
        Loaded {
            account: Some(account),
            sub_is_email: true,
            pre_authorized,
            held: None,
            jti_used: None,
        }
    }

    #[test]
    fn a_pre_authorized_user_gets_a_token_on_a_grant_made_with_the_jti_in_one_write() {
        let scopes = vec!["read".to_string(), "write".to_string()];
        let plan = decide(request(&scopes, Some("read")), user(true), 5).unwrap();
        let Ok(granted) = &plan.outcome else {
            panic!("{:?}", plan.outcome)
        };
        assert_eq!(granted.scope, "read");
        assert_eq!(granted.grant.gid.as_str(), "new");
        assert_eq!(plan.ops.len(), 3, "the jti, the grant's pointer and record");
    }

    #[test]
    fn a_refusal_after_the_jti_consumes_it_and_a_used_jti_writes_nothing() {
        let scopes = vec!["read".to_string()];
        let plan = grant(request(&scopes, None), user(false), 5).unwrap();
        assert_eq!(
            plan.outcome.account_id.as_deref(),
            Some("a1"),
            "named in the history"
        );
        assert_eq!(
            plan.outcome.result,
            Err(Refused::User(UserRefusal::NotPreAuthorized))
        );
        assert_eq!(plan.ops.len(), 1);
        let plan = decide(request(&scopes, Some("admin")), user(true), 5).unwrap();
        assert_eq!(plan.outcome, Err(Refused::ScopeOutside("admin".into())));
        let mut used = user(true);
        used.jti_used = Some(true);
        assert_eq!(
            decide(request(&scopes, None), used, 5).unwrap(),
            Plan::answer(Err(Refused::JtiReused))
        );
        let not_email = Loaded {
            sub_is_email: false,
            ..Loaded::default()
        };
        assert_eq!(
            decide(request(&scopes, None), not_email, 5)
                .unwrap()
                .outcome,
            Err(Refused::SubNotEmail)
        );
    }

    fn checked(c: Claims, now: i64) -> Result<(), String> {
        c.check(
            &[
                "https://id.example.com".into(),
                "https://id.example.com/oauth/jwt/token".into(),
            ],
            now,
        )
    }

    fn base() -> Claims {
        Claims {
            iss: "i".into(),
            sub: "s".into(),
            aud: vec!["https://id.example.com/oauth/jwt/token".into()],
            exp: Some(1_100),
            nbf: None,
            iat: Some(1_000),
            jti: None,
        }
    }

    #[test]
    fn time_and_audience_rules() {
        assert_eq!(checked(base(), 1_000), Ok(()));
        assert!(
            checked(
                Claims {
                    aud: vec![],
                    ..base()
                },
                1_000
            )
            .unwrap_err()
            .contains("no aud")
        );
        assert!(
            checked(
                Claims {
                    aud: vec!["https://evil.example.com".into()],
                    ..base()
                },
                1_000
            )
            .unwrap_err()
            .contains("aud")
        );
        assert!(
            checked(
                Claims {
                    exp: None,
                    ..base()
                },
                1_000
            )
            .unwrap_err()
            .contains("no exp")
        );
        assert!(
            checked(base(), 1_100).unwrap_err().contains("expired"),
            "exp is exclusive"
        );
        assert_eq!(
            checked(
                Claims {
                    exp: Some(1_300),
                    ..base()
                },
                1_000
            ),
            Ok(()),
            "exactly 5 minutes"
        );
        assert!(
            checked(
                Claims {
                    exp: Some(1_301),
                    ..base()
                },
                1_000
            )
            .unwrap_err()
            .contains("5 minutes")
        );
        assert_eq!(
            checked(
                Claims {
                    nbf: Some(1_060),
                    ..base()
                },
                1_000
            ),
            Ok(()),
            "skew"
        );
        assert!(
            checked(
                Claims {
                    nbf: Some(1_061),
                    ..base()
                },
                1_000
            )
            .unwrap_err()
            .contains("nbf")
        );
        assert!(
            checked(
                Claims {
                    iat: Some(1_061),
                    ..base()
                },
                1_000
            )
            .unwrap_err()
            .contains("iat")
        );
    }

    #[test]
    fn the_user_must_exist_be_pre_authorized_unblocked_and_active_in_that_order() {
        let ok = User {
            pre_authorized: true,
            blocked: false,
            active: true,
        };
        assert_eq!(user_may_have_token(Some((ok, "a"))), Ok("a"));
        assert_eq!(user_may_have_token::<()>(None), Err(UserRefusal::Unknown));
        let all_wrong = User {
            pre_authorized: false,
            blocked: true,
            active: false,
        };
        assert_eq!(
            user_may_have_token(Some((all_wrong, ()))),
            Err(UserRefusal::NotPreAuthorized)
        );
        assert_eq!(
            user_may_have_token(Some((
                User {
                    blocked: true,
                    active: false,
                    ..ok
                },
                ()
            ))),
            Err(UserRefusal::Blocked)
        );
        assert_eq!(
            user_may_have_token(Some((
                User {
                    active: false,
                    ..ok
                },
                ()
            ))),
            Err(UserRefusal::NotActive)
        );
    }

    #[test]
    fn scope_must_lie_within_the_clients() {
        let allowed = vec!["api".to_string(), "read-protected".to_string()];
        assert_eq!(granted_scope(None, &allowed).unwrap(), "api read-protected");
        assert_eq!(granted_scope(Some("api api"), &allowed).unwrap(), "api");
        assert_eq!(
            granted_scope(Some("api admin"), &allowed),
            Err("admin".into())
        );
    }
}
