//! Typed keys from a secret source, cached per process and refreshed after a bounded
//! interval so a rotation is picked up without a redeploy.
//!
//! Every secret is a JSON document `{"current": …, "previous": …}`: the current key signs
//! and seals, current and previous both verify and open. Three secrets exist:
//!
//! | kind | `current`/`previous` value |
//! |---|---|
//! | `cookie` | a string of at least 32 characters (Secrets Manager can generate it) |
//! | `signing` | `{"kid"?, "private_key_pem"}`: an EC P-256 PKCS#8 key (ES256 access tokens) |
//! | `saml-sp` | `{"private_key_pem", "certificate_pem"}`: the SAML SP's RSA key and certificate |

#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "keygen")]
pub mod rotation;
pub mod secretsmanager;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, AeadKey, MacKey};
use crate::secret::{SecretBytes, SecretString};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    Cookie,
    Signing,
    SamlSp,
}

impl SecretKind {
    pub const ALL: [SecretKind; 3] = [SecretKind::Cookie, SecretKind::Signing, SecretKind::SamlSp];

    pub fn name(self) -> &'static str {
        match self {
            SecretKind::Cookie => "cookie",
            SecretKind::Signing => "signing",
            SecretKind::SamlSp => "saml-sp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret source unavailable: {0}")]
    Unavailable(String),
    /// The secret exists but is not usable; the reason never quotes the secret.
    #[error("secret {kind} is not usable: {reason}")]
    Invalid { kind: &'static str, reason: String },
}

fn invalid(kind: SecretKind, reason: impl Into<String>) -> SecretsError {
    SecretsError::Invalid {
        kind: kind.name(),
        reason: reason.into(),
    }
}

/// Where secret documents come from.
#[async_trait]
pub trait SecretSource: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The JSON document of one secret (its current version).
    async fn fetch(&self, kind: SecretKind) -> Result<SecretString, SecretsError>;
}

#[derive(Serialize, Deserialize)]
pub struct Doc<T> {
    pub current: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<T>,
}

fn parse_doc<T: DeserializeOwned>(
    kind: SecretKind,
    json: &SecretString,
) -> Result<Doc<T>, SecretsError> {
    // serde's message can quote the input; keep only its position.
    serde_json::from_str(json.expose_secret()).map_err(|e| {
        invalid(
            kind,
            format!(
                "not the expected JSON document (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// Cookie sealing keys: seal with the current one, open with either; and tags (HMAC) made
/// with the current one, accepted from either.
#[derive(Debug)]
pub struct CookieKeys {
    current: AeadKey,
    previous: Option<AeadKey>,
    tag_current: MacKey,
    tag_previous: Option<MacKey>,
}

const COOKIE_LABEL: &str = "identity cookie v1";
const TAG_LABEL: &str = "identity tag v1";

impl CookieKeys {
    pub fn parse(json: &SecretString) -> Result<Self, SecretsError> {
        let doc: Doc<SecretStringDe> = parse_doc(SecretKind::Cookie, json)?;
        // One secret string, two keys: the sealing key and the tag key, under their labels.
        let keys = |s: &SecretStringDe| {
            let material = SecretBytes::new(s.0.expose_secret().as_bytes().to_vec());
            let too_short = |_| {
                invalid(
                    SecretKind::Cookie,
                    "key material must be at least 32 characters",
                )
            };
            Ok::<_, SecretsError>((
                AeadKey::derive(&material, COOKIE_LABEL).map_err(too_short)?,
                MacKey::derive(&material, TAG_LABEL).map_err(too_short)?,
            ))
        };
        let (current, tag_current) = keys(&doc.current)?;
        let (previous, tag_previous) = match doc.previous.as_ref().map(keys).transpose()? {
            Some((aead, mac)) => (Some(aead), Some(mac)),
            None => (None, None),
        };
        Ok(Self {
            current,
            previous,
            tag_current,
            tag_previous,
        })
    }

    /// A tag of `data` for `purpose` that only the server can make (the current key).
    pub fn tag(&self, purpose: &str, data: &str) -> String {
        self.tag_current
            .tag(format!("{purpose}\n{data}").as_bytes())
    }

    /// Whether `presented` is the tag of `data` for `purpose` under either key.
    pub fn tag_ok(&self, purpose: &str, data: &str, presented: &str) -> bool {
        let message = format!("{purpose}\n{data}");
        self.tag_current.verify(message.as_bytes(), presented)
            || self
                .tag_previous
                .as_ref()
                .is_some_and(|k| k.verify(message.as_bytes(), presented))
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        self.current.seal(plaintext, aad)
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> Option<Vec<u8>> {
        self.current
            .open(sealed, aad)
            .or_else(|| self.previous.as_ref()?.open(sealed, aad))
    }
}

#[cfg(test)]
impl CookieKeys {
    /// Fresh keys of a generated document, for unit tests.
    pub(crate) fn generated() -> Self {
        Self::parse(&SecretString::new(
            serde_json::json!({"current": generate(SecretKind::Cookie).unwrap()}).to_string(),
        ))
        .unwrap()
    }
}

/// A string field of a secret document, held as a secret while it is parsed.
struct SecretStringDe(SecretString);

impl<'de> Deserialize<'de> for SecretStringDe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretStringDe(SecretString::new(s)))
    }
}

/// An ES256 access-token signing key.
pub struct SigningKey {
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub pkcs8_der: SecretBytes,
    /// The public key as a JWK (with `kid`, `alg`, `use`).
    pub public_jwk: serde_json::Value,
    /// The key, parsed once when the secret is read (parsing costs more than signing).
    pair: EcdsaKeyPair,
}

impl SigningKey {
    /// ES256 over `data`: the fixed-size `r ‖ s` signature JWS uses (RFC 7518 §3.4).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SecretsError> {
        self.pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), data)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| invalid(SecretKind::Signing, "signing failed".to_string()))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SigningKeyDoc {
    #[serde(default)]
    kid: Option<String>,
    private_key_pem: SecretStringDe,
}

impl SigningKey {
    fn parse(doc: &SigningKeyDoc) -> Result<Self, SecretsError> {
        let bad = |r: &str| invalid(SecretKind::Signing, r.to_string());
        let pem = pem::parse(doc.private_key_pem.0.expose_secret())
            .map_err(|_| bad("private_key_pem is not PEM"))?;
        if pem.tag() != "PRIVATE KEY" {
            return Err(bad(
                "private_key_pem must be a PKCS#8 'PRIVATE KEY' (EC P-256)",
            ));
        }
        let der = SecretBytes::new(pem.contents().to_vec());
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.expose_secret())
            .map_err(|_| bad("private_key_pem is not an EC P-256 PKCS#8 key"))?;
        let point = pair.public_key().as_ref();
        // Uncompressed SEC1 point: 0x04 ‖ X(32) ‖ Y(32).
        if point.len() != 65 || point[0] != 4 {
            return Err(bad("unexpected public key encoding"));
        }
        let (x, y) = (crypto::b64url(&point[1..33]), crypto::b64url(&point[33..]));
        // RFC 7638 thumbprint: the members in lexicographic order, no spaces.
        let thumbprint = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = match &doc.kid {
            Some(k) if !k.trim().is_empty() => k.clone(),
            _ => crypto::b64url(
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, thumbprint.as_bytes())
                    .as_ref(),
            ),
        };
        let public_jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig",
        });
        Ok(Self {
            kid,
            pkcs8_der: der,
            public_jwk,
            pair,
        })
    }
}

#[derive(Debug)]
pub struct SigningKeys {
    pub current: SigningKey,
    pub previous: Option<SigningKey>,
}

impl SigningKeys {
    pub fn parse(json: &SecretString) -> Result<Self, SecretsError> {
        let doc: Doc<SigningKeyDoc> = parse_doc(SecretKind::Signing, json)?;
        let current = SigningKey::parse(&doc.current)?;
        let previous = doc.previous.as_ref().map(SigningKey::parse).transpose()?;
        if previous.as_ref().is_some_and(|p| p.kid == current.kid) {
            return Err(invalid(
                SecretKind::Signing,
                "current and previous keys have the same kid",
            ));
        }
        Ok(Self { current, previous })
    }

    /// The key with this `kid`, current or previous.
    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.kid == kid)
    }

    /// The JWK Set to publish: current first, then previous.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .map(|k| k.public_jwk.clone())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// The SAML service provider's RSA key and certificate.
pub struct SpKey {
    pub private_key_pem: SecretString,
    pub certificate_pem: String,
}

impl std::fmt::Debug for SpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpKey").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SpKeyDoc {
    private_key_pem: SecretStringDe,
    certificate_pem: String,
}

impl SpKey {
    fn parse(doc: SpKeyDoc) -> Result<Self, SecretsError> {
        let bad = |r: &str| invalid(SecretKind::SamlSp, r.to_string());
        let key = pem::parse(doc.private_key_pem.0.expose_secret())
            .map_err(|_| bad("private_key_pem is not PEM"))?;
        if !key.tag().ends_with("PRIVATE KEY") {
            return Err(bad("private_key_pem is not a private key"));
        }
        let cert =
            pem::parse(&doc.certificate_pem).map_err(|_| bad("certificate_pem is not PEM"))?;
        if cert.tag() != "CERTIFICATE" {
            return Err(bad("certificate_pem is not a certificate"));
        }
        Ok(Self {
            private_key_pem: doc.private_key_pem.0,
            certificate_pem: doc.certificate_pem,
        })
    }

    /// The certificate's DER, base64 (as SAML metadata and KeyInfo carry it).
    pub fn certificate_base64(&self) -> String {
        use base64::Engine;
        let der = pem::parse(&self.certificate_pem)
            .map(|p| p.contents().to_vec())
            .unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(der)
    }
}

#[derive(Debug)]
pub struct SamlSpKeys {
    pub current: SpKey,
    pub previous: Option<SpKey>,
}

impl SamlSpKeys {
    pub fn parse(json: &SecretString) -> Result<Self, SecretsError> {
        let doc: Doc<SpKeyDoc> = parse_doc(SecretKind::SamlSp, json)?;
        Ok(Self {
            current: SpKey::parse(doc.current)?,
            previous: doc.previous.map(SpKey::parse).transpose()?,
        })
    }
}

/// Fresh key material for a kind, as the `current` value of its document.
#[cfg(feature = "keygen")]
pub fn generate(kind: SecretKind) -> Result<serde_json::Value, SecretsError> {
    let failed = |e: rcgen::Error| SecretsError::Unavailable(format!("key generation failed: {e}"));
    Ok(match kind {
        SecretKind::Cookie => serde_json::Value::String(crypto::b64url(&crypto::random_bytes(32))),
        SecretKind::Signing => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| SecretsError::Unavailable("key generation failed".into()))?;
            let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", doc.as_ref().to_vec()));
            serde_json::json!({ "private_key_pem": pem })
        }
        SecretKind::SamlSp => {
            let key =
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                    .map_err(failed)?;
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "identity SAML service provider");
            params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
            params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
            let cert = params.self_signed(&key).map_err(failed)?;
            serde_json::json!({ "private_key_pem": key.serialize_pem(), "certificate_pem": cert.pem() })
        }
    })
}

/// Checks that a document parses as the kind's keys (used before storing one).
pub fn validate(kind: SecretKind, json: &SecretString) -> Result<(), SecretsError> {
    match kind {
        SecretKind::Cookie => CookieKeys::parse(json).map(|_| ()),
        SecretKind::Signing => SigningKeys::parse(json).map(|_| ()),
        SecretKind::SamlSp => SamlSpKeys::parse(json).map(|_| ()),
    }
}

struct Slot<T> {
    value: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            value: Mutex::new(None),
        }
    }
}

/// The keys a process uses, fetched from the source and kept for `refresh`. When a
/// refresh fails the keys already held are used for at most two more intervals; after
/// that every use fails (closed).
pub struct Secrets {
    source: Arc<dyn SecretSource>,
    refresh: Duration,
    cookie: Slot<CookieKeys>,
    signing: Slot<SigningKeys>,
    saml_sp: Slot<SamlSpKeys>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("source", &self.source.name())
            .field("refresh", &self.refresh)
            .finish()
    }
}

impl Secrets {
    pub fn new(source: Arc<dyn SecretSource>, refresh: Duration) -> Self {
        Self {
            source,
            refresh,
            cookie: Slot::default(),
            signing: Slot::default(),
            saml_sp: Slot::default(),
        }
    }

    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    async fn get<T>(
        &self,
        slot: &Slot<T>,
        kind: SecretKind,
        parse: fn(&SecretString) -> Result<T, SecretsError>,
    ) -> Result<Arc<T>, SecretsError> {
        let held = slot.value.lock().expect("secrets cache lock").clone();
        if let Some((at, v)) = &held
            && at.elapsed() < self.refresh
        {
            return Ok(v.clone());
        }
        match self.source.fetch(kind).await.and_then(|doc| parse(&doc)) {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *slot.value.lock().expect("secrets cache lock") =
                    Some((Instant::now(), fresh.clone()));
                Ok(fresh)
            }
            Err(e) => match held {
                Some((at, v)) if at.elapsed() < self.refresh * 3 => {
                    tracing::warn!(secret = kind.name(), error = %e, "secret refresh failed; using the keys already held");
                    Ok(v)
                }
                _ => Err(e),
            },
        }
    }

    pub async fn cookie_keys(&self) -> Result<Arc<CookieKeys>, SecretsError> {
        self.get(&self.cookie, SecretKind::Cookie, CookieKeys::parse)
            .await
    }

    pub async fn signing_keys(&self) -> Result<Arc<SigningKeys>, SecretsError> {
        self.get(&self.signing, SecretKind::Signing, SigningKeys::parse)
            .await
    }

    pub async fn saml_sp_keys(&self) -> Result<Arc<SamlSpKeys>, SecretsError> {
        self.get(&self.saml_sp, SecretKind::SamlSp, SamlSpKeys::parse)
            .await
    }

    /// Fetches the given kinds now (Lambda init), so the first request does not wait.
    pub async fn warm(&self, kinds: &[SecretKind]) -> Result<(), SecretsError> {
        for kind in kinds {
            match kind {
                SecretKind::Cookie => self.cookie_keys().await.map(|_| ())?,
                SecretKind::Signing => self.signing_keys().await.map(|_| ())?,
                SecretKind::SamlSp => self.saml_sp_keys().await.map(|_| ())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(current: serde_json::Value, previous: Option<serde_json::Value>) -> SecretString {
        let mut d = serde_json::json!({ "current": current });
        if let Some(p) = previous {
            d["previous"] = p;
        }
        SecretString::new(d.to_string())
    }

    #[test]
    fn cookie_sealed_with_previous_key_still_opens_after_rotation() {
        let old = generate(SecretKind::Cookie).unwrap();
        let new = generate(SecretKind::Cookie).unwrap();
        let before = CookieKeys::parse(&doc(old.clone(), None)).unwrap();
        let sealed = before.seal(b"s", b"aad");
        let after = CookieKeys::parse(&doc(new.clone(), Some(old))).unwrap();
        assert_eq!(after.open(&sealed, b"aad").unwrap(), b"s");
        let later =
            CookieKeys::parse(&doc(generate(SecretKind::Cookie).unwrap(), Some(new))).unwrap();
        assert!(
            later.open(&sealed, b"aad").is_none(),
            "a key two rotations old must not open"
        );
    }

    #[test]
    fn short_cookie_material_is_refused() {
        assert!(CookieKeys::parse(&doc(serde_json::json!("short"), None)).is_err());
    }

    #[test]
    fn signing_keys_publish_current_and_previous() {
        let keys = SigningKeys::parse(&doc(
            generate(SecretKind::Signing).unwrap(),
            Some(generate(SecretKind::Signing).unwrap()),
        ))
        .unwrap();
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_eq!(jwks["keys"][0]["kid"], keys.current.kid.as_str());
        assert_eq!(jwks["keys"][0]["alg"], "ES256");
        assert!(
            jwks["keys"][0].get("d").is_none(),
            "no private part in the JWKS"
        );
        assert!(keys.by_kid(&keys.previous.as_ref().unwrap().kid).is_some());
        assert!(keys.by_kid("nope").is_none());
    }

    #[test]
    fn errors_never_quote_the_secret() {
        let json = SecretString::new(r#"{"current": {"private_key_pem": "TOPSECRETVALUE"}}"#);
        let err = SigningKeys::parse(&json).unwrap_err().to_string();
        assert!(!err.contains("TOPSECRETVALUE"), "{err}");
        let err = CookieKeys::parse(&SecretString::new("{TOPSECRET"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("TOPSECRET"), "{err}");
    }

    #[test]
    fn saml_sp_key_generates_and_parses() {
        let keys = SamlSpKeys::parse(&doc(generate(SecretKind::SamlSp).unwrap(), None)).unwrap();
        assert!(keys.current.certificate_pem.contains("BEGIN CERTIFICATE"));
        assert!(!keys.current.certificate_base64().is_empty());
    }
}
