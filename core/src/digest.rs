//! Secret material at rest, as types that never print: [`Digest`], a stored hash (of a
//! password, a client secret, a partner password), and [`Sealed`], a stored secret value (a
//! salt, a sealed ciphertext). `Debug` prints `[redacted]`, so records holding them derive
//! `Debug` instead of hand-writing a redacting one. Each serializes as the plain string, so
//! records keep their shape.

use serde::{Deserialize, Serialize};

/// The lowercase hex SHA-256 of `data`: how keys and stored hashes name a value without
/// holding it.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    pub fn new(hash: impl Into<String>) -> Self {
        Self(hash.into())
    }

    /// The hash, for comparison.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Digest {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Digest {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A stored secret value: a salt, or a ciphertext sealed with a key of ours.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl Sealed {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the formula or the key that opens it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Sealed {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Sealed {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Whether two secret-derived strings are equal, in time that does not depend on where they
/// differ (their lengths are public: hashes, challenges, client ids).
pub fn same(a: &str, b: &str) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_never_prints_and_serializes_as_its_string() {
        let d = Digest::new("5e88489");
        assert_eq!(format!("{d:?}"), "[redacted]");
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"5e88489\"");
        let back: Digest = serde_json::from_str("\"5e88489\"").unwrap();
        assert_eq!(back, d);
        let s = Sealed::new("c2VhbGVk");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"c2VhbGVk\"");
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"), "a prefix is not equal");
        assert!(!same("", "a"));
    }
}
