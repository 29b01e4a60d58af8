//! [`Digest`]: a stored hash (of a password, a client secret, a partner password). It is
//! compared, never shown: `Debug` prints `[redacted]`, so records holding one derive
//! `Debug` instead of hand-writing a redacting one. It serializes as the plain string, so
//! records keep their shape.

use serde::{Deserialize, Serialize};

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

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
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
    }
}
