//! Small, sharp tools over aws-lc-rs: random tokens, hashes for storage, constant-time
//! comparison, AEAD sealing, password hashing.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::{SecretBytes, SecretString};

/// `n` random bytes from the system CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    rand::fill(&mut buf).expect("the system random source failed");
    buf
}

/// A random number below `n` (a shard to spread writes over; not for secrets). `n` > 0.
pub fn random_below(n: u32) -> u32 {
    let b = random_bytes(4);
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) % n
}

/// A random URL-safe token with 256 bits of entropy (codes, refresh tokens, session ids).
pub fn random_token() -> SecretString {
    SecretString::new(URL_SAFE_NO_PAD.encode(random_bytes(32)))
}

/// Lowercase hex SHA-256: what the store keeps instead of a code, token or session id.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// Equality that takes the same time wherever the inputs first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// 256 key bits from secret material of any length (≥ 32 bytes): SHA-256 of the label, a
/// zero byte and the material, so one secret string serves several keys, one per label.
fn derive_key_bytes(material: &SecretBytes, label: &str) -> Result<digest::Digest, CryptoError> {
    if material.expose_secret().len() < 32 {
        return Err(CryptoError::KeyTooShort);
    }
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(label.as_bytes());
    ctx.update(&[0]);
    ctx.update(material.expose_secret());
    Ok(ctx.finish())
}

/// A 256-bit AEAD key (AES-256-GCM with a random nonce per message).
pub struct AeadKey {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey([redacted])")
    }
}

impl AeadKey {
    /// Derives the key from secret material of any length (≥ 32 bytes) with SHA-256 under a
    /// label, so one secret string (as Secrets Manager generates them) serves as key material.
    pub fn derive(material: &SecretBytes, label: &str) -> Result<Self, CryptoError> {
        let okm = derive_key_bytes(material, label)?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, okm.as_ref())
            .map_err(|_| CryptoError::KeyTooShort)?;
        Ok(Self { key })
    }

    /// nonce ‖ ciphertext ‖ tag, base64url.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .expect("AES-GCM sealing of a short message cannot fail");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&in_out);
        b64url(&out)
    }

    /// The plaintext, or `None` for anything tampered, truncated or sealed by another key.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Option<Vec<u8>> {
        let raw = b64url_decode(sealed)?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// A 256-bit HMAC-SHA256 key, for tags a browser carries that only the server can make
/// (the pre-sign-in form token).
pub struct MacKey {
    key: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey([redacted])")
    }
}

impl MacKey {
    /// Derives the key from secret material (≥ 32 bytes) under a label, as [`AeadKey`].
    pub fn derive(material: &SecretBytes, label: &str) -> Result<Self, CryptoError> {
        let okm = derive_key_bytes(material, label)?;
        Ok(Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, okm.as_ref()),
        })
    }

    /// The tag of `data`, base64url.
    pub fn tag(&self, data: &[u8]) -> String {
        b64url(aws_lc_rs::hmac::sign(&self.key, data).as_ref())
    }

    /// Whether `presented` is the tag of `data` (in constant time).
    pub fn verify(&self, data: &[u8], presented: &str) -> bool {
        constant_time_eq(self.tag(data).as_bytes(), presented.as_bytes())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key material is shorter than 32 bytes")]
    KeyTooShort,
    #[error("password hashing failed")]
    PasswordHash,
}

/// Argon2id PHC string for a password.
pub fn hash_password(password: &SecretString) -> Result<String, CryptoError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&random_bytes(16)).map_err(|_| CryptoError::PasswordHash)?;
    argon2::Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| CryptoError::PasswordHash)
}

/// Checks a password against a stored PHC string (constant time inside argon2).
pub fn verify_password(password: &SecretString, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(material: &[u8]) -> AeadKey {
        AeadKey::derive(&SecretBytes::new(material.to_vec()), "test").unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_aad() {
        let k = key(&[7u8; 32]);
        let sealed = k.seal(b"session-id", b"cookie");
        assert_eq!(k.open(&sealed, b"cookie").unwrap(), b"session-id");
        assert!(k.open(&sealed, b"other").is_none());
        assert!(key(&[8u8; 32]).open(&sealed, b"cookie").is_none());
    }

    #[test]
    fn tampered_sealed_value_does_not_open() {
        let k = key(&[7u8; 32]);
        let sealed = k.seal(b"session-id", b"cookie");
        let mut raw = b64url_decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(k.open(&b64url(&raw), b"cookie").is_none());
        assert!(k.open("", b"cookie").is_none());
        assert!(k.open("!!!", b"cookie").is_none());
    }

    #[test]
    fn short_key_material_is_refused() {
        assert!(AeadKey::derive(&SecretBytes::new(vec![1; 31]), "x").is_err());
    }

    #[test]
    fn passwords_verify_only_when_right() {
        let phc = hash_password(&SecretString::new("correct horse")).unwrap();
        assert!(verify_password(&SecretString::new("correct horse"), &phc));
        assert!(!verify_password(&SecretString::new("wrong horse"), &phc));
        assert!(!verify_password(
            &SecretString::new("x"),
            "not-a-phc-string"
        ));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn tokens_are_random_and_hashed_hex() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 43);
        assert_eq!(sha256_hex(b"abc").len(), 64);
    }
}
