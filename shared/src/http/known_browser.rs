//! The device cookie (OWASP's "device cookies"): a browser that has signed in to an account
//! with its password carries a sealed cookie naming the account and a random nonce. A
//! password attempt from that browser for that account is counted under the nonce alone
//! ([`crate::throttle::Attempt::device`]), so a lock or surge made by strangers does not
//! reach the person at their own browser; a stranger cannot make one for someone else's
//! account (it is sealed under the cookie key and given only after a right password).
//!
//! One cookie holds up to [`MAX_ACCOUNTS`] accounts, newest first, for 180 days from the
//! last sign-in; HttpOnly, SameSite=Lax, `__Host-` named and Secure under https.

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::secrets::CookieKeys;
use crate::session::cookie_value;

/// The accounts one browser remembers.
pub const MAX_ACCOUNTS: usize = 5;
/// How long the cookie lasts after the last sign-in.
pub const MAX_AGE_SECS: i64 = 180 * 86_400;
const AAD: &[u8] = b"identity device v1";

/// The cookie's name: `__Host-identity_device` under https, `identity_device` otherwise.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-identity_device"
    } else {
        "identity_device"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// The account id.
    a: String,
    /// The nonce its attempts from this browser are counted under.
    n: String,
}

fn entries(keys: &CookieKeys, headers: &HeaderMap, secure: bool) -> Vec<Entry> {
    cookie_value(headers, cookie_name(secure))
        .filter(|v| v.len() <= 2048)
        .and_then(|v| keys.open(v, AAD))
        .and_then(|plain| serde_json::from_slice::<Vec<Entry>>(&plain).ok())
        .unwrap_or_default()
}

/// The nonce this browser holds for `account_id`, when it signed in to it before.
pub fn nonce_for(
    keys: &CookieKeys,
    headers: &HeaderMap,
    secure: bool,
    account_id: &str,
) -> Option<String> {
    entries(keys, headers, secure)
        .into_iter()
        .find(|e| e.a == account_id)
        .map(|e| e.n)
}

/// `Set-Cookie` remembering `account_id` in this browser (its nonce kept when it had one),
/// first among at most [`MAX_ACCOUNTS`].
pub fn remember(keys: &CookieKeys, headers: &HeaderMap, secure: bool, account_id: &str) -> String {
    let mut list = entries(keys, headers, secure);
    let nonce = match list.iter().position(|e| e.a == account_id) {
        Some(i) => list.remove(i).n,
        None => crypto::random_token().expose_secret().to_string(),
    };
    list.insert(
        0,
        Entry {
            a: account_id.to_string(),
            n: nonce,
        },
    );
    list.truncate(MAX_ACCOUNTS);
    let sealed = keys.seal(
        &serde_json::to_vec(&list).expect("a list of strings serialises"),
        AAD,
    );
    let flags = if secure { "; Secure" } else { "" };
    format!(
        "{}={sealed}; Path=/; Max-Age={MAX_AGE_SECS}; HttpOnly; SameSite=Lax{flags}",
        cookie_name(secure)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, pair.parse().unwrap());
        h
    }

    #[test]
    fn a_browser_remembers_the_accounts_it_signed_in_to_and_keeps_their_nonces() {
        let k = CookieKeys::generated();
        let first = remember(&k, &HeaderMap::new(), true, "acct-1");
        assert!(first.starts_with("__Host-identity_device="), "{first}");
        assert!(first.contains("; Secure") && first.contains("HttpOnly"));
        let nonce = nonce_for(&k, &sent(&first), true, "acct-1").expect("remembered");
        assert_eq!(nonce_for(&k, &sent(&first), true, "acct-2"), None);
        let second = remember(&k, &sent(&first), true, "acct-2");
        assert_eq!(nonce_for(&k, &sent(&second), true, "acct-1"), Some(nonce));
        assert!(nonce_for(&k, &sent(&second), true, "acct-2").is_some());
    }

    #[test]
    fn a_device_cookie_is_worth_nothing_under_another_key_or_name_or_when_tampered() {
        let k = CookieKeys::generated();
        let set = remember(&k, &HeaderMap::new(), false, "acct-1");
        assert!(set.starts_with("identity_device=") && !set.contains("Secure"));
        assert_eq!(
            nonce_for(&CookieKeys::generated(), &sent(&set), false, "acct-1"),
            None
        );
        assert_eq!(nonce_for(&k, &sent(&set), true, "acct-1"), None);
        let tampered = set.replacen("identity_device=", "identity_device=A", 1);
        assert_eq!(nonce_for(&k, &sent(&tampered), false, "acct-1"), None);
    }

    #[test]
    fn a_browser_remembers_at_most_five_accounts_newest_first() {
        let k = CookieKeys::generated();
        let mut set = remember(&k, &HeaderMap::new(), false, "acct-0");
        for i in 1..=MAX_ACCOUNTS {
            set = remember(&k, &sent(&set), false, &format!("acct-{i}"));
        }
        assert_eq!(nonce_for(&k, &sent(&set), false, "acct-0"), None);
        assert!(nonce_for(&k, &sent(&set), false, &format!("acct-{MAX_ACCOUNTS}")).is_some());
    }
}
