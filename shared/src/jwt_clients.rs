//! JWT bearer clients (RFC 7523): the clients CI systems sign assertions for. Each has a
//! random `client_id` (the assertion's `iss`), X.509 certificates whose public keys verify
//! its assertions (several at once, for rotation), the users it may act for (pre-authorized
//! by an operator) and the scopes it may be given.
//!
//! A client is one record, updated with a version condition, so the grant reads everything
//! it needs (certificates and pre-authorized users) in one read, at request time.

use async_trait::async_trait;
use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::public_key::PublicKey;

use crate::accounts::Account;
use crate::crypto;
use crate::store::{Item, Plan, Store, StoreError, Table, record};

/// A client holds at most this many certificates (two are enough to rotate).
pub const MAX_CERTIFICATES: usize = 10;
/// A client may act for at most this many users.
pub const MAX_USERS: usize = 1000;
/// RSA keys are accepted from this size …
pub const MIN_RSA_BITS: u32 = 2048;
/// … up to this one.
pub const MAX_RSA_BITS: u32 = 4096;
/// Clock skew allowed around a certificate's `notBefore` (a freshly made certificate is
/// usable at once even when our clock is a little behind).
pub const CERT_SKEW_SECS: i64 = 60;

/// The kind of public key a certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyKind {
    #[serde(rename = "rsa")]
    Rsa,
    #[serde(rename = "ec-p256")]
    EcP256,
}

/// A registered certificate: the PEM as uploaded, its thumbprints (how `x5t`, `x5t#S256`
/// and `kid` may name it) and its public key in the form the verifier takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// `x5t#S256`: base64url SHA-256 of the DER. The certificate's id.
    pub x5t_s256: String,
    /// `x5t`: base64url SHA-1 of the DER.
    pub x5t: String,
    pub pem: String,
    pub key: KeyKind,
    pub key_bits: u32,
    /// base64url of the PKCS#1 `RSAPublicKey` DER (RSA) or the uncompressed point (EC).
    pub public_key: String,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub added_at: i64,
}

impl Certificate {
    /// Parses one PEM certificate: RSA 2048–4096 bits or EC P-256, not expired at `now`.
    /// A file that also holds a private key is refused: only the certificate is uploaded.
    pub fn from_pem(text: &str, now: i64) -> Result<Self, JwtClientError> {
        let bad = |m: &str| JwtClientError::Certificate(m.to_string());
        let blocks = pem::parse_many(text).map_err(|_| bad("not a PEM file"))?;
        if blocks.iter().any(|b| b.tag().contains("PRIVATE KEY")) {
            return Err(bad(
                "the file holds a private key; register the certificate only (keep the key in CI)",
            ));
        }
        let certs: Vec<_> = blocks.iter().filter(|b| b.tag() == "CERTIFICATE").collect();
        let [block] = certs.as_slice() else {
            return Err(bad("the file must hold exactly one CERTIFICATE"));
        };
        let der = block.contents();
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| bad("not a valid X.509 certificate"))?;
        if !rest.is_empty() {
            return Err(bad("trailing data after the certificate"));
        }
        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        if not_after <= now {
            return Err(bad("the certificate has expired"));
        }
        let spki = cert.public_key();
        let (key, key_bits, public_key) = if spki.algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(bad("the RSA public key does not parse"));
            };
            let bits = rsa_bits(rsa.modulus);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(JwtClientError::Certificate(format!(
                    "RSA keys must be {MIN_RSA_BITS} to {MAX_RSA_BITS} bits; this one has {bits}"
                )));
            }
            match rsa.try_exponent() {
                Ok(e) if e >= 3 && e % 2 == 1 => {}
                _ => return Err(bad("the RSA public exponent is not acceptable")),
            }
            (KeyKind::Rsa, bits, spki.subject_public_key.data.to_vec())
        } else if spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            if curve.as_ref() != Some(&OID_EC_P256) {
                return Err(bad("EC keys must be on the P-256 curve"));
            }
            let point = spki.subject_public_key.data.to_vec();
            if point.len() != 65 || point[0] != 4 {
                return Err(bad("the EC public key must be an uncompressed P-256 point"));
            }
            (KeyKind::EcP256, 256, point)
        } else {
            return Err(bad("the key must be RSA (2048–4096 bits) or EC P-256"));
        };
        let subject: String = cert
            .subject()
            .to_string()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        Ok(Self {
            x5t_s256: crypto::b64url(digest::digest(&digest::SHA256, der).as_ref()),
            x5t: crypto::b64url(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()),
            pem: pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())),
            key,
            key_bits,
            public_key: crypto::b64url(&public_key),
            subject,
            not_before,
            not_after,
            added_at: now,
        })
    }

    /// The public key bytes (see [`Certificate::public_key`]).
    pub fn public_key_bytes(&self) -> Option<Vec<u8>> {
        crypto::b64url_decode(&self.public_key)
    }

    /// Within its validity period at `now` (with [`CERT_SKEW_SECS`] before `notBefore`).
    pub fn valid_at(&self, now: i64) -> bool {
        self.not_before - CERT_SKEW_SECS <= now && now < self.not_after
    }

    /// Whether `thumbprint` names this certificate: its `x5t#S256` or `x5t` (base64url), or
    /// its SHA-256 or SHA-1 fingerprint in hex (as `openssl x509 -fingerprint` prints it).
    pub fn is_named_by(&self, thumbprint: &str) -> bool {
        let t = thumbprint.trim();
        if t == self.x5t_s256 || t == self.x5t {
            return true;
        }
        let hex_form: String = t.chars().filter(|c| *c != ':').collect::<String>();
        let hex_form = hex_form.to_ascii_lowercase();
        [&self.x5t_s256, &self.x5t]
            .iter()
            .filter_map(|b| crypto::b64url_decode(b))
            .any(|raw| hex::encode(raw) == hex_form)
    }

    /// "RSA 4096" / "EC P-256".
    pub fn key_description(&self) -> String {
        match self.key {
            KeyKind::Rsa => format!("RSA {}", self.key_bits),
            KeyKind::EcP256 => "EC P-256".into(),
        }
    }

    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "x5t#S256": self.x5t_s256,
            "x5t": self.x5t,
            "key": self.key_description(),
            "subject": self.subject,
            "not_before": crate::clock::rfc3339(self.not_before),
            "not_after": crate::clock::rfc3339(self.not_after),
            "added_at": crate::clock::rfc3339(self.added_at),
        })
    }
}

/// Bits of a big-endian unsigned modulus (DER integers may carry a leading zero byte).
fn rsa_bits(modulus: &[u8]) -> u32 {
    let m: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => return 0,
    };
    (m.len() as u32) * 8 - m[0].leading_zeros()
}

/// A user the client may act for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreAuthorizedUser {
    pub account_id: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtClient {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub certificates: Vec<Certificate>,
    pub users: Vec<PreAuthorizedUser>,
    pub created_at: i64,
    /// Store version, for optimistic updates; not part of the record body.
    #[serde(skip)]
    pub version: i64,
}

identity_core::versioned!(JwtClient);

impl JwtClient {
    pub fn is_pre_authorized(&self, account_id: &str) -> bool {
        self.users.iter().any(|u| u.account_id == account_id)
    }

    /// The operator-facing JSON.
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.client_id,
            "name": self.name,
            "scopes": self.scopes,
            "certificates": self.certificates.iter().map(Certificate::public_json).collect::<Vec<_>>(),
            "users": self.users.iter().map(|u| serde_json::json!({"account_id": u.account_id, "email": u.email})).collect::<Vec<_>>(),
            "created_at": crate::clock::rfc3339(self.created_at),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwtClientError {
    #[error("no such JWT client")]
    NotFound,
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("this certificate is already registered for the client")]
    DuplicateCertificate,
    #[error("no certificate of the client matches {0:?}")]
    NoSuchCertificate(String),
    #[error("a JWT client needs at least one certificate")]
    NoCertificate,
    #[error("a JWT client has at most {MAX_CERTIFICATES} certificates")]
    TooManyCertificates,
    #[error("a JWT client may act for at most {MAX_USERS} users")]
    TooManyUsers,
    #[error("client names are 1 to 80 characters, without control characters")]
    InvalidName,
    #[error("{0:?} is not a valid scope (RFC 6749 §3.3)")]
    InvalidScope(String),
    #[error("the client changed meanwhile; try again")]
    Changed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A scope token as RFC 6749 §3.3 allows: `%x21 / %x23-5B / %x5D-7E`, at most 128 long.
pub fn valid_scope(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn client_pk(client_id: &str) -> String {
    format!("jwtclient#{client_id}")
}
const CLIENT_SK: &str = "client";

/// A new random client id: `jwt_` and 24 letters and digits (about 143 bits).
pub fn new_client_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut id = String::from("jwt_");
    while id.len() < 4 + 24 {
        for b in crypto::random_bytes(32) {
            // Rejection sampling: 248 = 4 × 62, so every character is equally likely.
            if b < 248 && id.len() < 4 + 24 {
                id.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    id
}

fn users_of(accounts: &[Account]) -> Vec<PreAuthorizedUser> {
    accounts
        .iter()
        .map(|a| PreAuthorizedUser {
            account_id: a.id.to_string(),
            email: a.email.clone(),
        })
        .collect()
}

#[async_trait]
pub trait JwtClients {
    /// Registers a client with its certificates, pre-authorized users and scopes.
    async fn create_jwt_client(
        &self,
        name: &str,
        certificates: Vec<Certificate>,
        users: &[Account],
        scopes: &[String],
    ) -> Result<JwtClient, JwtClientError>;
    /// The client, read from the store now.
    async fn jwt_client(&self, client_id: &str) -> Result<Option<JwtClient>, JwtClientError>;
    async fn list_jwt_clients(&self) -> Result<Vec<JwtClient>, JwtClientError>;
    /// Adds a certificate (rotation: old and new are both accepted until one is removed).
    async fn add_certificate(
        &self,
        client_id: &str,
        certificate: Certificate,
    ) -> Result<JwtClient, JwtClientError>;
    /// Removes the certificate `thumbprint` names (see [`Certificate::is_named_by`]); its key
    /// is refused from then on. Removing the last one leaves a client no assertion satisfies.
    async fn remove_certificate(
        &self,
        client_id: &str,
        thumbprint: &str,
    ) -> Result<JwtClient, JwtClientError>;
    /// Pre-authorizes users (already authorized ones are kept as they are).
    async fn authorize_users(
        &self,
        client_id: &str,
        users: &[Account],
    ) -> Result<JwtClient, JwtClientError>;
    /// Withdraws pre-authorizations; the next assertion for those users is refused.
    async fn deauthorize_users(
        &self,
        client_id: &str,
        account_ids: &[String],
    ) -> Result<JwtClient, JwtClientError>;
}

type Change<'a> = &'a (dyn Fn(&mut JwtClient) -> Result<(), JwtClientError> + Send + Sync);

/// Read, change, write with a version condition, as a plan: a concurrent change makes the
/// executor load and change again, so two operators' changes both land.
async fn update(
    store: &Store,
    client_id: &str,
    change: Change<'_>,
) -> Result<JwtClient, JwtClientError> {
    let changed = store
        .run(
            |_| async {
                match store.jwt_client(client_id).await {
                    Ok(client) => Ok(client),
                    Err(JwtClientError::Store(e)) => Err(e),
                    Err(other) => Err(StoreError::Corrupt(other.to_string())),
                }
            },
            |client, _| {
                let Some(mut client) = client else {
                    return Ok(Plan::answer(Err(JwtClientError::NotFound)));
                };
                let read_version = client.version;
                if let Err(e) = change(&mut client) {
                    return Ok(Plan::answer(Err(e)));
                }
                client.version = read_version + 1;
                let item = Item::new(client_pk(client_id), CLIENT_SK, &client)?
                    .with_version(client.version);
                let put = record::replace(Table::JwtClients, item, read_version);
                Ok(Plan::write(vec![put], Ok(client)))
            },
        )
        .await;
    match changed {
        Ok(result) => result,
        Err(StoreError::Conflict) => Err(JwtClientError::Changed),
        Err(e) => Err(e.into()),
    }
}

/// Revokes the grants the JWT grant made for these accounts with this client: their access
/// tokens (and named authorizations) answer inactive from now on.
async fn revoke_client_grants(
    store: &Store,
    client_id: &str,
    account_ids: &[String],
) -> Result<(), StoreError> {
    use crate::oauth::Grants;
    for account_id in account_ids {
        if let Some(grant) = store.current_grant(account_id, client_id).await? {
            store.revoke_grant(&grant.gid).await?;
        }
    }
    Ok(())
}

fn check_scopes(scopes: &[String]) -> Result<Vec<String>, JwtClientError> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        if !valid_scope(s) {
            return Err(JwtClientError::InvalidScope(s.clone()));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

#[async_trait]
impl JwtClients for Store {
    async fn create_jwt_client(
        &self,
        name: &str,
        certificates: Vec<Certificate>,
        users: &[Account],
        scopes: &[String],
    ) -> Result<JwtClient, JwtClientError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
            return Err(JwtClientError::InvalidName);
        }
        if certificates.is_empty() {
            return Err(JwtClientError::NoCertificate);
        }
        if certificates.len() > MAX_CERTIFICATES {
            return Err(JwtClientError::TooManyCertificates);
        }
        let mut certs: Vec<Certificate> = Vec::new();
        for c in certificates {
            if certs.iter().any(|k| k.x5t_s256 == c.x5t_s256) {
                return Err(JwtClientError::DuplicateCertificate);
            }
            certs.push(c);
        }
        let mut list = users_of(users);
        list.dedup_by(|a, b| a.account_id == b.account_id);
        if list.len() > MAX_USERS {
            return Err(JwtClientError::TooManyUsers);
        }
        let client = JwtClient {
            client_id: new_client_id(),
            name: name.to_string(),
            scopes: check_scopes(scopes)?,
            certificates: certs,
            users: list,
            created_at: self.now(),
            version: 1,
        };
        let item = Item::new(client_pk(&client.client_id), CLIENT_SK, &client)?;
        self.write(vec![record::create(Table::JwtClients, item)])
            .await?;
        Ok(client)
    }

    async fn jwt_client(&self, client_id: &str) -> Result<Option<JwtClient>, JwtClientError> {
        Ok(self
            .get_versioned(Table::JwtClients, &client_pk(client_id), CLIENT_SK)
            .await?)
    }

    async fn list_jwt_clients(&self) -> Result<Vec<JwtClient>, JwtClientError> {
        let items = self.backend().scan(Table::JwtClients, self.now()).await?;
        let mut clients = items
            .iter()
            .filter(|i| i.sk == CLIENT_SK && i.pk.starts_with("jwtclient#"))
            .map(Item::parse_versioned)
            .collect::<Result<Vec<JwtClient>, _>>()?;
        clients.sort_by(|a, b| (a.created_at, &a.client_id).cmp(&(b.created_at, &b.client_id)));
        Ok(clients)
    }

    async fn add_certificate(
        &self,
        client_id: &str,
        certificate: Certificate,
    ) -> Result<JwtClient, JwtClientError> {
        update(self, client_id, &|c: &mut JwtClient| {
            if c.certificates
                .iter()
                .any(|k| k.x5t_s256 == certificate.x5t_s256)
            {
                return Err(JwtClientError::DuplicateCertificate);
            }
            if c.certificates.len() >= MAX_CERTIFICATES {
                return Err(JwtClientError::TooManyCertificates);
            }
            c.certificates.push(certificate.clone());
            Ok(())
        })
        .await
    }

    async fn remove_certificate(
        &self,
        client_id: &str,
        thumbprint: &str,
    ) -> Result<JwtClient, JwtClientError> {
        let client = update(self, client_id, &|c: &mut JwtClient| {
            let before = c.certificates.len();
            c.certificates.retain(|k| !k.is_named_by(thumbprint));
            if c.certificates.len() == before {
                return Err(JwtClientError::NoSuchCertificate(thumbprint.to_string()));
            }
            Ok(())
        })
        .await?;
        // Tokens do not say which certificate signed their assertion: every token of the
        // client goes (assertions signed by the remaining certificates get new ones).
        let everyone: Vec<String> = client.users.iter().map(|u| u.account_id.clone()).collect();
        revoke_client_grants(self, client_id, &everyone).await?;
        Ok(client)
    }

    async fn authorize_users(
        &self,
        client_id: &str,
        users: &[Account],
    ) -> Result<JwtClient, JwtClientError> {
        let add = users_of(users);
        update(self, client_id, &|c: &mut JwtClient| {
            for u in &add {
                if !c.is_pre_authorized(&u.account_id) {
                    c.users.push(u.clone());
                }
            }
            if c.users.len() > MAX_USERS {
                return Err(JwtClientError::TooManyUsers);
            }
            Ok(())
        })
        .await
    }

    async fn deauthorize_users(
        &self,
        client_id: &str,
        account_ids: &[String],
    ) -> Result<JwtClient, JwtClientError> {
        let client = update(self, client_id, &|c: &mut JwtClient| {
            c.users.retain(|u| !account_ids.contains(&u.account_id));
            Ok(())
        })
        .await?;
        revoke_client_grants(self, client_id, account_ids).await?;
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(alg: &'static rcgen::SignatureAlgorithm) -> String {
        let key = if alg == &rcgen::PKCS_RSA_SHA256 {
            rcgen::KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).unwrap()
        } else {
            rcgen::KeyPair::generate_for(alg).unwrap()
        };
        let params = rcgen::CertificateParams::new(vec!["ci.example.com".to_string()]).unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn rsa_and_p256_certificates_parse_with_thumbprints() {
        let rsa = Certificate::from_pem(&cert(&rcgen::PKCS_RSA_SHA256), 1_000).unwrap();
        assert_eq!(rsa.key, KeyKind::Rsa);
        assert_eq!(rsa.key_bits, 2048);
        assert_eq!(rsa.x5t_s256.len(), 43);
        assert_eq!(rsa.x5t.len(), 27);
        assert!(rsa.is_named_by(&rsa.x5t_s256) && rsa.is_named_by(&rsa.x5t));
        let ec = Certificate::from_pem(&cert(&rcgen::PKCS_ECDSA_P256_SHA256), 1_000).unwrap();
        assert_eq!(ec.key, KeyKind::EcP256);
        assert_eq!(ec.public_key_bytes().unwrap().len(), 65);
        let hex_fp = hex::encode(crypto::b64url_decode(&ec.x5t_s256).unwrap()).to_uppercase();
        let colons = hex_fp
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert!(
            ec.is_named_by(&colons),
            "openssl's fingerprint form names it"
        );
        assert!(!ec.is_named_by(&rsa.x5t_s256));
    }

    #[test]
    fn other_curves_private_keys_and_garbage_are_refused() {
        let p384 = cert(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert!(matches!(
            Certificate::from_pem(&p384, 0),
            Err(JwtClientError::Certificate(m)) if m.contains("P-256")
        ));
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let both = format!("{}{}", cert.pem(), key.serialize_pem());
        assert!(matches!(
            Certificate::from_pem(&both, 0),
            Err(JwtClientError::Certificate(m)) if m.contains("private key")
        ));
        assert!(Certificate::from_pem("hello", 0).is_err());
        assert!(Certificate::from_pem(&format!("{0}{0}", cert.pem()), 0).is_err());
    }

    #[test]
    fn expired_certificate_is_refused_and_validity_has_skew() {
        let c = Certificate::from_pem(&cert(&rcgen::PKCS_ECDSA_P256_SHA256), 0).unwrap();
        assert!(c.valid_at(c.not_before - CERT_SKEW_SECS));
        assert!(!c.valid_at(c.not_before - CERT_SKEW_SECS - 1));
        assert!(!c.valid_at(c.not_after));
        assert!(matches!(
            Certificate::from_pem(&c.pem, c.not_after),
            Err(JwtClientError::Certificate(m)) if m.contains("expired")
        ));
    }

    #[test]
    fn client_ids_are_random_letters_and_digits() {
        let a = new_client_id();
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("jwt_") && a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, new_client_id());
    }

    #[test]
    fn rsa_bits_count_the_modulus() {
        assert_eq!(rsa_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(rsa_bits(&[0x01, 0, 0]), 17);
        assert_eq!(rsa_bits(&[0, 0]), 0);
    }

    #[test]
    fn scopes_follow_rfc_6749() {
        assert!(valid_scope("api") && valid_scope("read-protected") && valid_scope("a:b/c"));
        for bad in ["", "a b", "quo\"te", "back\\slash", "é"] {
            assert!(!valid_scope(bad), "{bad:?}");
        }
    }
}
