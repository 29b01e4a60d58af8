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

#[cfg(test)]
mod tests {
    use super::*;

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
