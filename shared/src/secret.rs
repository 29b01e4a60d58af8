//! Secret values: newtypes whose `Debug` prints `[redacted]`, with no `Display` or
//! `Serialize`, reachable only through `expose_secret()` (the oauth2-rs pattern).

use std::fmt;

use zeroize::Zeroize;

/// A secret string (password, client secret, PEM private key, token).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Secret bytes (symmetric keys, PKCS#8 documents).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {} bytes])", self.0.len())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = SecretString::new("hunter2-very-secret");
        let b = SecretBytes::new(b"key-material".to_vec());
        let shown = format!("{s:?} {b:?} {:#?}", (&s, &b));
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("key-material"));
        assert!(shown.contains("redacted"));
        assert_eq!(s.expose_secret(), "hunter2-very-secret");
    }
}
