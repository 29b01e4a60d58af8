//! Client authentication at the token, revocation and introspection endpoints, as a rule:
//! given what the registry holds of the named client (if anything) and the secret presented
//! (if any), is this the client? Secrets are kept as their SHA-256 and compared in constant
//! time; an unknown client or a public one presenting a secret costs the same comparison,
//! so the answer's timing tells nothing.

use crate::digest::{same, sha256_hex};

/// What the registry holds of a client, as authentication needs it.
#[derive(Debug, Clone, Copy)]
pub struct Registered<'a> {
    /// No secret (native and browser apps): names itself with `client_id` alone.
    pub public: bool,
    /// Lowercase hex SHA-256 of the secret; `None` for public clients.
    pub secret_sha256: Option<&'a str>,
}

/// Compared against when there is no stored hash: the same work, never a match.
const NO_SECRET: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Whether `presented` hashes to `stored` (constant time; `None` never matches).
pub fn secret_matches(stored: Option<&str>, presented: &str) -> bool {
    let hash = sha256_hex(presented.as_bytes());
    let against = stored.unwrap_or(NO_SECRET);
    same(&hash, against) && stored.is_some()
}

/// The rule: a public client authenticates with no secret; a confidential one with its
/// secret. Anything else (unknown client, a public client sending a secret, a confidential
/// one sending none or a wrong one) fails, after the same comparison work.
pub fn authenticate(registered: Option<Registered<'_>>, presented: Option<&str>) -> bool {
    match (registered, presented) {
        (Some(c), None) => c.public,
        (Some(c), Some(secret)) => {
            let matches = secret_matches(c.secret_sha256, secret);
            matches && !c.public
        }
        (None, Some(secret)) => {
            let _ = secret_matches(None, secret);
            false
        }
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(s: &str) -> String {
        sha256_hex(s.as_bytes())
    }

    #[test]
    fn a_confidential_client_authenticates_with_its_secret_only() {
        let hash = sha("s3cret");
        let c = Registered {
            public: false,
            secret_sha256: Some(&hash),
        };
        assert!(authenticate(Some(c), Some("s3cret")));
        assert!(!authenticate(Some(c), Some("wrong")));
        assert!(!authenticate(Some(c), None), "no secret, no authentication");
    }

    #[test]
    fn a_public_client_names_itself_and_must_not_send_a_secret() {
        let c = Registered {
            public: true,
            secret_sha256: None,
        };
        assert!(authenticate(Some(c), None));
        assert!(!authenticate(Some(c), Some("anything")));
    }

    #[test]
    fn an_unknown_client_never_authenticates() {
        assert!(!authenticate(None, Some("s3cret")));
        assert!(!authenticate(None, None));
        assert!(
            !secret_matches(None, "0"),
            "the placeholder matches nothing"
        );
    }
}
