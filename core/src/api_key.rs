//! Long-lived API keys (`identity authorizations create`): when a stored key still speaks
//! for its account.
//!
//! A key records the account's key epoch when it was made. Everything that revokes the
//! account's grants bumps that epoch too (a move to SSO, a password reset, a block), so the
//! same change ends every key made before it, with no write per key: the seeds' "long-lived
//! tokens get invalidated after upgrading your account to use SSO", and the account's other
//! revocations with it, and "sign out everywhere".
//!
//! A key also records the grant of the login that made it and ends with that grant. Only
//! the first-party CLI may make keys, from a login a person approved minutes ago
//! ([`may_mint`]): a token obtained by phishing a consent, a CI token or a refreshed token
//! makes none.

/// The scopes an API key carries: it acts as its account, as a Heroku API key does.
pub const SCOPE: &str = "identity global";

/// Prefix of every API key, so a leaked one is recognisable (secret scanners) and the bearer
/// reader knows which kind of token it holds without trying to parse a JWT.
pub const PREFIX: &str = "idk_";

/// Longest lifetime a key may ask for: one year. Without `--expires-in` a key lasts until it
/// is revoked (or the account's epoch moves).
pub const MAX_LIFETIME_SECS: i64 = 365 * 24 * 60 * 60;

/// Longest description kept.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// How recent the person's approval behind the token must be for it to make a key.
pub const MINT_WINDOW_SECS: i64 = 5 * 60;

/// What [`may_mint`] needs of the bearer asking for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minter<'a> {
    /// The bearer is itself an API key.
    pub is_api_key: bool,
    /// The client the access token was issued to.
    pub client_id: Option<&'a str>,
    /// The grant the token belongs to.
    pub gid: Option<&'a str>,
    /// When the person approved the token (`auth_time`).
    pub auth_time: Option<i64>,
}

/// Whether the bearer may make an API key at `now`: an access token of `first_party` (the
/// CLI's own client), on a grant, approved by its person within [`MINT_WINDOW_SECS`]. The
/// refusal says what to do.
pub fn may_mint(minter: Minter<'_>, first_party: &str, now: i64) -> Result<(), &'static str> {
    if minter.is_api_key {
        return Err(
            "API keys are made with a signed-in token (identity login), not with another API key",
        );
    }
    if minter.client_id != Some(first_party) || minter.gid.is_none() {
        return Err("API keys are made only by the identity CLI from a login (identity login)");
    }
    match minter.auth_time {
        Some(t) if now - t <= MINT_WINDOW_SECS && t <= now + 60 => Ok(()),
        _ => Err(
            "API keys are made only within 5 minutes of a login: run identity login, then try again",
        ),
    }
}

/// What the decision needs of the key's account, as loaded now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub key_epoch: u64,
    pub blocked: bool,
    pub active: bool,
}

/// Whether a key made in `key_epoch` still acts for its account: the account exists, is
/// active and not blocked, and has not had its grants revoked since. (Expiry is the store's:
/// an expired key is absent.)
pub fn usable(key_epoch: u64, holder: Option<Holder>) -> bool {
    holder.is_some_and(|h| h.active && !h.blocked && h.key_epoch == key_epoch)
}

/// Checks a requested lifetime: `None` is "until revoked"; otherwise 60 s to a year.
pub fn lifetime(requested: Option<i64>) -> Result<Option<i64>, &'static str> {
    match requested {
        None => Ok(None),
        Some(s) if (60..=MAX_LIFETIME_SECS).contains(&s) => Ok(Some(s)),
        Some(_) => Err("expires_in must be between 60 seconds and one year (31536000)"),
    }
}

/// A description as kept: trimmed, control characters refused, at most 200 characters.
pub fn description(requested: Option<&str>) -> Result<String, &'static str> {
    let d = requested.unwrap_or("").trim();
    if d.chars().any(char::is_control) {
        return Err("the description must not contain control characters");
    }
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err("the description is longer than 200 characters");
    }
    Ok(d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: Holder = Holder {
        key_epoch: 3,
        blocked: false,
        active: true,
    };

    #[test]
    fn a_key_acts_only_while_its_account_keeps_the_epoch_it_was_made_in() {
        assert!(usable(3, Some(LIVE)));
        // Moved to SSO, reset its password, blocked: the epoch moved on.
        assert!(!usable(2, Some(LIVE)));
        assert!(!usable(3, None));
        assert!(!usable(
            3,
            Some(Holder {
                blocked: true,
                ..LIVE
            })
        ));
        assert!(!usable(
            3,
            Some(Holder {
                active: false,
                ..LIVE
            })
        ));
    }

    #[test]
    fn only_the_first_party_client_makes_keys_within_minutes_of_an_approval() {
        let fresh = Minter {
            is_api_key: false,
            client_id: Some("identity-cli"),
            gid: Some("g1"),
            auth_time: Some(1_000),
        };
        assert_eq!(
            may_mint(fresh, "identity-cli", 1_000 + MINT_WINDOW_SECS),
            Ok(())
        );
        for refused in [
            Minter {
                auth_time: Some(999),
                ..fresh
            },
            // Refreshed, client credentials, JWT bearer grant: no person approved it.
            Minter {
                auth_time: None,
                ..fresh
            },
            Minter {
                client_id: Some("third-party"),
                ..fresh
            },
            Minter { gid: None, ..fresh },
            Minter {
                is_api_key: true,
                ..fresh
            },
        ] {
            assert!(
                may_mint(refused, "identity-cli", 1_000 + MINT_WINDOW_SECS).is_err(),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn lifetimes_and_descriptions_are_bounded() {
        assert_eq!(lifetime(None), Ok(None));
        assert_eq!(lifetime(Some(3600)), Ok(Some(3600)));
        assert!(lifetime(Some(59)).is_err());
        assert!(lifetime(Some(MAX_LIFETIME_SECS + 1)).is_err());
        assert_eq!(description(Some("  CI deploys ")), Ok("CI deploys".into()));
        assert_eq!(description(None), Ok(String::new()));
        assert!(description(Some("a\nb")).is_err());
        assert!(description(Some(&"x".repeat(201))).is_err());
    }
}
