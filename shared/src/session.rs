//! Server-side sessions referenced by an encrypted, authenticated cookie.
//!
//! The cookie holds the session id sealed with the cookie key (AES-256-GCM, the cookie's
//! name as associated data). The store keeps the session under the SHA-256 of the id, with
//! the absolute expiry as its TTL. A cookie that does not open, or whose record is gone or
//! expired, is simply "no session".

use async_trait::async_trait;
use http::HeaderMap;

use crate::accounts::Account;
use crate::crypto;
use crate::secret::SecretString;
use crate::secrets::CookieKeys;
use crate::store::{Store, StoreError, Table};

pub const COOKIE_NAME: &str = "identity_session";
/// The name under https: the `__Host-` prefix makes browsers accept it only with `Secure`,
/// `Path=/` and no `Domain`, so no other host (a sibling subdomain) or path can set or
/// shadow it.
pub const SECURE_COOKIE_NAME: &str = "__Host-identity_session";

/// The session cookie's name when the service is (`secure`) or is not served over https.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

/// A cookie's name as the service sets it: under https (`secure`) `__Host-NAME` when it is
/// set with `Path=/` (`root`: no other host or path can set or shadow it), `__Secure-NAME`
/// otherwise (browsers then take it only with `Secure`, and never from plain http); over
/// plain http (local use) the bare name.
pub fn prefixed_name(name: &str, secure: bool, root: bool) -> String {
    match (secure, root) {
        (true, true) => format!("__Host-{name}"),
        (true, false) => format!("__Secure-{name}"),
        (false, _) => name.to_string(),
    }
}

/// The raw session id, as sealed into the cookie. Never stored, never printed.
#[derive(Debug, Clone)]
pub struct SessionId(SecretString);

impl SessionId {
    pub fn new_random() -> Self {
        Self(crypto::random_token())
    }

    fn storage_key(&self) -> String {
        format!(
            "session#{}",
            crypto::sha256_hex(self.0.expose_secret().as_bytes())
        )
    }

    /// Seals the id into a cookie value.
    pub fn seal(&self, keys: &CookieKeys) -> String {
        keys.seal(self.0.expose_secret().as_bytes(), COOKIE_NAME.as_bytes())
    }

    /// Opens a cookie value sealed by the current or previous key.
    pub fn open(keys: &CookieKeys, cookie_value: &str) -> Option<Self> {
        let raw = keys.open(cookie_value, COOKIE_NAME.as_bytes())?;
        String::from_utf8(raw)
            .ok()
            .map(|s| Self(SecretString::new(s)))
    }

    /// A value bound to this session, for CSRF tokens: HMAC-like digest of the id and a
    /// purpose, so the token proves possession of the session without revealing its id.
    pub fn derive(&self, purpose: &str) -> String {
        crypto::b64url(
            aws_lc_rs::hmac::sign(
                &aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    self.0.expose_secret().as_bytes(),
                ),
                purpose.as_bytes(),
            )
            .as_ref(),
        )
    }
}

use identity_core::session::{self as rules, SubjectEntry, subject_pk};
pub use identity_core::session::{
    IMPERSONATION_LIFETIME_SECS, Impersonation, SamlSubject, Session,
};

#[async_trait]
pub trait Sessions {
    /// Starts a session for the account, lasting `lifetime_secs` from now whatever the
    /// activity (Heroku SSO's 8 hours).
    async fn start_session(
        &self,
        account: &Account,
        idp: Option<&str>,
        lifetime_secs: i64,
    ) -> Result<(SessionId, Session), StoreError>;
    /// Starts a session signed in by a SAML login that named `subject`, findable by
    /// [`Sessions::end_saml_sessions`].
    async fn start_saml_session(
        &self,
        account: &Account,
        idp: &str,
        subject: &SamlSubject,
        lifetime_secs: i64,
    ) -> Result<(SessionId, Session), StoreError>;
    /// An IdP's LogoutRequest: ends every live session that IdP `idp` signed in as
    /// `name_id` and, when `session_indexes` is not empty, only those of these IdP sessions.
    /// Returns how many ended.
    async fn end_saml_sessions(
        &self,
        idp: &str,
        name_id: &str,
        session_indexes: &[String],
    ) -> Result<usize, StoreError>;
    /// Starts an impersonation session: marked, an hour at most.
    async fn start_impersonation(
        &self,
        account: &Account,
        impersonation: Impersonation,
    ) -> Result<(SessionId, Session), StoreError>;
    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;
    async fn end_session(&self, id: &SessionId) -> Result<(), StoreError>;
}

#[async_trait]
impl Sessions for Store {
    async fn start_session(
        &self,
        account: &Account,
        idp: Option<&str>,
        lifetime_secs: i64,
    ) -> Result<(SessionId, Session), StoreError> {
        let session = Session {
            sso: idp.is_some(),
            idp: idp.map(str::to_string),
            ..Session::fresh(account, self.now(), lifetime_secs)
        };
        save_session(self, session).await
    }

    async fn start_saml_session(
        &self,
        account: &Account,
        idp: &str,
        subject: &SamlSubject,
        lifetime_secs: i64,
    ) -> Result<(SessionId, Session), StoreError> {
        let session = Session {
            sso: true,
            idp: Some(idp.to_string()),
            saml: Some(subject.clone()),
            ..Session::fresh(account, self.now(), lifetime_secs)
        };
        save_session(self, session).await
    }

    async fn end_saml_sessions(
        &self,
        idp: &str,
        name_id: &str,
        session_indexes: &[String],
    ) -> Result<usize, StoreError> {
        let pk = subject_pk(idp, name_id);
        let entries = self
            .backend()
            .query(Table::Sessions, &pk, "session#", self.now())
            .await?;
        let mut ended = 0;
        for entry in entries {
            if rules::named_by(&entry.parse::<SubjectEntry>()?, session_indexes) {
                self.apply(rules::end_indexed(&pk, &entry.sk)).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn start_impersonation(
        &self,
        account: &Account,
        impersonation: Impersonation,
    ) -> Result<(SessionId, Session), StoreError> {
        let session = Session {
            impersonation: Some(impersonation),
            ..Session::fresh(account, self.now(), IMPERSONATION_LIFETIME_SECS)
        };
        save_session(self, session).await
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.get(Table::Sessions, &id.storage_key(), "session")
            .await
    }

    async fn end_session(&self, id: &SessionId) -> Result<(), StoreError> {
        self.apply(rules::end(&id.storage_key())).await
    }
}

/// Stores a new session under a fresh random id (with its SAML index entry, in the same
/// write).
async fn save_session(store: &Store, session: Session) -> Result<(SessionId, Session), StoreError> {
    let id = SessionId::new_random();
    let session = store
        .apply(rules::start(&id.storage_key(), session)?)
        .await?;
    Ok((id, session))
}

/// The sign-out button's CSRF token (field `csrf` of `POST /logout`): bound to the session.
pub fn logout_csrf(session: &SessionId) -> String {
    session.derive("logout")
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a session cookie: HttpOnly, SameSite=Lax; under https (`secure`)
/// `__Host-` named and Secure.
pub fn set_cookie(value: &str, max_age_secs: i64, secure: bool) -> String {
    let name = cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_session_id_opens_only_with_its_key() {
        let (k, other) = (CookieKeys::generated(), CookieKeys::generated());
        let id = SessionId::new_random();
        let sealed = id.seal(&k);
        assert_eq!(
            SessionId::open(&k, &sealed).unwrap().storage_key(),
            id.storage_key()
        );
        assert!(
            SessionId::open(&other, &sealed).is_none(),
            "a foreign cookie is no session"
        );
        assert!(
            SessionId::open(&k, &format!("{sealed}x")).is_none(),
            "a tampered cookie is no session"
        );
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("v", 60, true);
        assert!(c.starts_with("__Host-identity_session=v; Path=/;"), "{c}");
        assert!(!c.contains("Domain"));
        assert!(
            c.contains("HttpOnly")
                && c.contains("SameSite=Lax")
                && c.contains("Secure")
                && c.contains("Path=/")
        );
        assert!(!set_cookie("v", 60, false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn cookie_header_parsing() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=1; identity_session=abc".parse().unwrap(),
        );
        h.append(http::header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie_value(&h, COOKIE_NAME), Some("abc"));
        assert_eq!(cookie_value(&h, "b"), Some("2"));
        assert_eq!(cookie_value(&h, "c"), None);
    }

    #[test]
    fn csrf_derivation_is_bound_to_the_session() {
        let (a, b) = (SessionId::new_random(), SessionId::new_random());
        assert_eq!(a.derive("csrf"), a.derive("csrf"));
        assert_ne!(a.derive("csrf"), b.derive("csrf"));
        assert_ne!(a.derive("csrf"), a.derive("other"));
    }
}
