//! RFC 9068 access tokens: JWTs with `typ: at+jwt`, signed ES256 with the current signing
//! key (`kid` in the header), verifiable with the JWKS (current and previous keys).
//!
//! ES256 rather than RS256: signing is an order of magnitude faster and the tokens are
//! shorter; every JOSE library verifies it. The token endpoint and the JWT bearer grant
//! both issue through [`issue`], so introspection and JWKS verification work on either.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::secret::SecretString;
use crate::secrets::SigningKeys;

pub use crate::config::ACCESS_TOKEN_TTL;
pub const TOKEN_TYPE: &str = "at+jwt";

/// The claims of an access token (RFC 9068 §2.2), plus `gid`, the grant it belongs to,
/// so revoking the grant makes introspection answer `active: false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The account id, or the client id for client-credentials tokens.
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// When the person acted to authorize this client (RFC 9068 §2.2.1): set on the tokens
    /// of a code exchange or a device approval and kept through refreshes; absent for tokens
    /// no person approved (client credentials, the JWT bearer grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl AccessClaims {
    /// Claims for a token issued now: fresh `jti`, `exp` = now + [`ACCESS_TOKEN_TTL`].
    pub fn new(
        issuer: &str,
        sub: &str,
        client_id: &str,
        scope: &str,
        gid: Option<&str>,
        now: i64,
    ) -> Self {
        Self {
            iss: issuer.to_string(),
            sub: sub.to_string(),
            aud: issuer.to_string(),
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            jti: crypto::b64url(&crypto::random_bytes(16)),
            iat: now,
            exp: now + ACCESS_TOKEN_TTL,
            gid: gid.map(str::to_string),
            auth_time: None,
        }
    }

    /// Marks the token as the fruit of a person's approval just now (a code exchange, a
    /// device approval): its `auth_time` is its issue time.
    pub fn approved_now(mut self) -> Self {
        self.auth_time = Some(self.iat);
        self
    }

    /// Limits the token to one app: its audience becomes the app's resource URL
    /// ([`app_audience`]) instead of the issuer.
    pub fn for_app(mut self, app_id: &str) -> Self {
        self.aud = app_audience(&self.iss, app_id);
        self
    }

    /// The app the token is limited to, if it is.
    pub fn app_id(&self) -> Option<&str> {
        self.aud
            .strip_prefix(&self.iss)
            .and_then(|rest| rest.strip_prefix(APP_AUDIENCE_PATH))
    }
}

const APP_AUDIENCE_PATH: &str = "/apps/";

/// The audience of a token limited to one app: `{issuer}/apps/{app_id}` (a resource
/// indicator, RFC 8707).
pub fn app_audience(issuer: &str, app_id: &str) -> String {
    format!("{issuer}{APP_AUDIENCE_PATH}{app_id}")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token could not be signed")]
    Signing,
    #[error("not a valid access token")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

/// Signs the claims with the current key (JWS compact serialization, ES256, the key parsed
/// once when the secret was read).
pub fn issue(keys: &SigningKeys, claims: &AccessClaims) -> Result<SecretString, TokenError> {
    let header = serde_json::json!({"typ": TOKEN_TYPE, "alg": "ES256", "kid": keys.current.kid});
    let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;
    let signing_input = format!(
        "{}.{}",
        crate::crypto::b64url(header.to_string().as_bytes()),
        crate::crypto::b64url(&payload)
    );
    let signature = keys
        .current
        .sign(signing_input.as_bytes())
        .map_err(|_| TokenError::Signing)?;
    Ok(SecretString::new(format!(
        "{signing_input}.{}",
        crate::crypto::b64url(&signature)
    )))
}

/// Verifies an access token of ours: ES256, `typ` at+jwt, a `kid` we hold (current or
/// previous), our issuer, our audience (the issuer, or one app's resource URL: callers
/// that act on apps check it with [`AccessClaims::app_id`]), not expired at `now`.
pub fn verify(
    keys: &SigningKeys,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<AccessClaims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
    if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some(TOKEN_TYPE) {
        return Err(TokenError::Invalid);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.by_kid(kid))
        .ok_or(TokenError::Invalid)?;
    let (x, y) = (
        key.public_jwk["x"].as_str().unwrap_or(""),
        key.public_jwk["y"].as_str().unwrap_or(""),
    );
    let decoding = DecodingKey::from_ec_components(x, y).map_err(|_| TokenError::Invalid)?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    // The audience is checked below: the issuer or an app under it.
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat", "jti"]);
    // Expiry is judged with our clock below (tests pin it), not the library's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let data = jsonwebtoken::decode::<AccessClaims>(token, &decoding, &validation)
        .map_err(|_| TokenError::Invalid)?;
    let c = &data.claims;
    if c.aud != issuer && c.app_id().is_none_or(|a| a.is_empty() || a.contains('/')) {
        return Err(TokenError::Invalid);
    }
    if data.claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{SecretKind, generate};

    fn keys(previous: bool) -> SigningKeys {
        let mut doc = serde_json::json!({ "current": generate(SecretKind::Signing).unwrap() });
        if previous {
            doc["previous"] = generate(SecretKind::Signing).unwrap();
        }
        SigningKeys::parse(&SecretString::new(doc.to_string())).unwrap()
    }

    const ISS: &str = "https://id.example.com";

    #[test]
    fn issued_token_verifies_with_header_as_rfc_9068_says() {
        let k = keys(false);
        let claims = AccessClaims::new(ISS, "acct-1", "client-1", "read write", Some("g1"), 1_000);
        let token = issue(&k, &claims).unwrap();
        let header = jsonwebtoken::decode_header(token.expose_secret()).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(k.current.kid.as_str()));
        assert_eq!(
            verify(&k, token.expose_secret(), ISS, 1_001).unwrap(),
            claims
        );
    }

    #[test]
    fn token_signed_by_previous_key_verifies_after_rotation() {
        let old = keys(false);
        let token = issue(&old, &AccessClaims::new(ISS, "a", "c", "s", None, 0)).unwrap();
        let rotated = SigningKeys::parse(&SecretString::new(
            serde_json::json!({
                "current": generate(SecretKind::Signing).unwrap(),
                "previous": { "private_key_pem": pem::encode(&pem::Pem::new("PRIVATE KEY", old.current.pkcs8_der.expose_secret().to_vec())) },
            })
            .to_string(),
        ))
        .unwrap();
        assert!(verify(&rotated, token.expose_secret(), ISS, 1).is_ok());
        assert_eq!(
            verify(&keys(false), token.expose_secret(), ISS, 1),
            Err(TokenError::Invalid),
            "unknown kid"
        );
    }

    #[test]
    fn expired_wrong_issuer_and_tampered_tokens_fail() {
        let k = keys(false);
        let token = issue(&k, &AccessClaims::new(ISS, "a", "c", "s", None, 0)).unwrap();
        let t = token.expose_secret();
        assert_eq!(
            verify(&k, t, ISS, ACCESS_TOKEN_TTL),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&k, t, "https://other.example.com", 1),
            Err(TokenError::Invalid)
        );
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&crypto::b64url_decode(&parts[1]).unwrap()).unwrap();
        payload["scope"] = "admin".into();
        parts[1] = crypto::b64url(payload.to_string().as_bytes());
        assert_eq!(
            verify(&k, &parts.join("."), ISS, 1),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_token_limited_to_an_app_names_it_in_its_audience_and_no_other_audience_verifies() {
        let k = keys(false);
        let claims = AccessClaims::new(ISS, "a", "c", "s", Some("g"), 0).for_app("app-1");
        assert_eq!(claims.aud, "https://id.example.com/apps/app-1");
        let token = issue(&k, &claims).unwrap();
        let back = verify(&k, token.expose_secret(), ISS, 1).unwrap();
        assert_eq!(back.app_id(), Some("app-1"));
        assert_eq!(
            AccessClaims::new(ISS, "a", "c", "s", None, 0).app_id(),
            None
        );
        for aud in [
            "https://elsewhere.example.com",
            "https://id.example.com/apps/",
            "https://id.example.com/apps/a/b",
        ] {
            let mut c = AccessClaims::new(ISS, "a", "c", "s", None, 0);
            c.aud = aud.into();
            let t = issue(&k, &c).unwrap();
            assert_eq!(
                verify(&k, t.expose_secret(), ISS, 1),
                Err(TokenError::Invalid),
                "{aud}"
            );
        }
    }
}
