//! PKCE (RFC 7636), `S256` only: `plain` would let anyone who sees the authorization request
//! redeem the code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::digest::same;

/// The only method accepted.
pub const S256: &str = "S256";

/// A `code_challenge` as `S256` makes it: base64url (no padding) of 32 bytes, 43 characters.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && URL_SAFE_NO_PAD
            .decode(challenge)
            .is_ok_and(|b| b.len() == 32)
}

/// A `code_verifier`: 43 to 128 unreserved characters (RFC 7636 §4.1).
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `S256(verifier)`: base64url of its SHA-256.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The verifier is well-formed and hashes to the challenge (compared in constant time).
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier) && same(&challenge_of(verifier), challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b_example_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(challenge_of(verifier), challenge);
        assert!(valid_challenge(challenge));
        assert!(verify_s256(verifier, challenge));
    }

    #[test]
    fn pkce_wrong_verifier_fails() {
        let challenge = challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            &challenge
        ));
        assert!(
            !verify_s256(&challenge, &challenge),
            "the challenge itself is not a verifier for itself"
        );
    }

    #[test]
    fn pkce_plain_shaped_challenge_and_short_verifier_are_refused() {
        assert!(!valid_challenge("short"));
        assert!(
            !valid_challenge(&"a".repeat(64)),
            "a plain verifier is not an S256 challenge"
        );
        assert!(!valid_verifier(&"a".repeat(42)));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(valid_verifier(&"a~._-".repeat(10)));
    }
}
