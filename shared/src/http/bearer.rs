//! Bearer-token routes (RFC 6750): the one reader of `Authorization: Bearer`, the one check
//! of the token it carries ([`authenticate`]), and the one way such a route refuses (401
//! with `WWW-Authenticate: Bearer …`, or 403 `insufficient_scope` naming the scope needed).

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::{AppState, Internal, JsonError};
use crate::api_keys::{ApiKeys, is_api_key};
use crate::oauth::access_token_active;
use crate::secrets::SigningKeys;
use crate::tokens::{self, AccessClaims};

const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The token of the request's `Authorization: Bearer` header (the scheme in any case), if
/// there is one, non-empty and at most 8 KiB.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_LEN)
        .then_some(token)
}

/// Why a bearer-token route refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerRefusal {
    /// No token sent (RFC 6750 §3.1: no error code in the challenge).
    Missing,
    /// Not one of our tokens, expired, revoked, or not for this resource.
    Invalid,
    /// A valid token without this scope.
    Scope(&'static str),
}

impl IntoResponse for BearerRefusal {
    fn into_response(self) -> Response {
        let (error, challenge) = match self {
            BearerRefusal::Missing => (
                JsonError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_request",
                    "send an access token: Authorization: Bearer TOKEN",
                ),
                "Bearer realm=\"identity\"".to_string(),
            ),
            BearerRefusal::Invalid => (
                JsonError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "the access token is not valid or has expired",
                ),
                "Bearer realm=\"identity\", error=\"invalid_token\"".to_string(),
            ),
            BearerRefusal::Scope(scope) => (
                JsonError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    format!("the access token needs the {scope} scope"),
                ),
                format!(
                    "Bearer realm=\"identity\", error=\"insufficient_scope\", scope=\"{scope}\""
                ),
            ),
        };
        let mut response = error.into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

/// Why a bearer-token request got no further: a refusal, or our failure (503).
#[derive(Debug)]
pub enum Denied {
    Refused(BearerRefusal),
    Internal(Internal),
}

impl From<BearerRefusal> for Denied {
    fn from(r: BearerRefusal) -> Self {
        Denied::Refused(r)
    }
}

impl From<Internal> for Denied {
    fn from(e: Internal) -> Self {
        Denied::Internal(e)
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Refused(r) => r.into_response(),
            Denied::Internal(e) => e.json().into_response(),
        }
    }
}

/// The audiences a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Only tokens for the issuer itself (not ones limited to an app).
    Issuer,
    /// The issuer's, or one app's (the route checks which app).
    IssuerOrApp,
}

/// Who a bearer request speaks for, after [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account id (a client's id for a client-credentials token).
    pub sub: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The app an access token is limited to (its audience), if any.
    pub app_id: Option<String>,
    /// The API key's id, when the bearer was a long-lived API key.
    pub api_key: Option<String>,
    /// The client an access token was issued to (`None` for an API key).
    pub client_id: Option<String>,
    /// The grant an access token belongs to (an API key: the grant that made it).
    pub gid: Option<String>,
    /// When a person approved the access token (`auth_time`), if one did.
    pub auth_time: Option<i64>,
}

impl Caller {
    fn from_claims(claims: &AccessClaims) -> Self {
        Self {
            sub: claims.sub.clone(),
            scope: claims.scope.clone(),
            app_id: claims.app_id().map(str::to_string),
            api_key: None,
            client_id: Some(claims.client_id.clone()),
            gid: claims.gid.clone(),
            auth_time: claims.auth_time,
        }
    }

    /// What [`identity_core::api_key::may_mint`] judges of this caller.
    pub fn minter(&self) -> identity_core::api_key::Minter<'_> {
        identity_core::api_key::Minter {
            is_api_key: self.api_key.is_some(),
            client_id: self.client_id.as_deref(),
            gid: self.gid.as_deref(),
            auth_time: self.auth_time,
        }
    }
}

/// The request's bearer credential, verified, with the signing keys of this request:
/// - an access token: ours, this issuer, not expired, an audience the route takes, and
///   active as introspection judges it (`oauth::access_token_active`);
/// - or an API key (`idk_…`): stored, not expired, and still acting for an active,
///   unblocked account that has not ended its sessions since (`api_keys`).
///
/// Either must hold one of `scopes` (a refusal names the first).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    audience: Audience,
    scopes: &[&'static str],
) -> Result<(Caller, Arc<SigningKeys>), Denied> {
    let token = token(headers).ok_or(BearerRefusal::Missing)?;
    let keys = state
        .secrets
        .signing_keys()
        .await
        .map_err(Internal::from_display("signing keys"))?;
    let caller = if is_api_key(token) {
        let (key, account) = state
            .store
            .api_key_in_use(token)
            .await
            .map_err(Internal::from_display("api key read"))?
            .ok_or(BearerRefusal::Invalid)?;
        Caller {
            sub: account.id.to_string(),
            scope: identity_core::api_key::SCOPE.to_string(),
            app_id: None,
            gid: key.gid.clone(),
            api_key: Some(key.id),
            client_id: None,
            auth_time: None,
        }
    } else {
        let claims = tokens::verify(&keys, token, &state.config.base_url, state.now())
            .map_err(|_| BearerRefusal::Invalid)?;
        if audience == Audience::Issuer && claims.app_id().is_some() {
            // A token limited to one app is not for this resource.
            return Err(BearerRefusal::Invalid.into());
        }
        if !access_token_active(&state.store, &claims)
            .await
            .map_err(Internal::from_display("token state read"))?
        {
            return Err(BearerRefusal::Invalid.into());
        }
        Caller::from_claims(&claims)
    };
    if !caller.scope.split(' ').any(|s| scopes.contains(&s)) {
        return Err(BearerRefusal::Scope(scopes.first().copied().unwrap_or("")).into());
    }
    Ok((caller, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_read_case_insensitively_and_bounded() {
        let mut h = HeaderMap::new();
        assert_eq!(token(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(token(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(token(&h), None);
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&long).unwrap());
        assert_eq!(token(&h), None);
    }

    #[test]
    fn each_refusal_carries_its_challenge() {
        let r = BearerRefusal::Missing.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"identity\""
        );
        let r = BearerRefusal::Scope("identity").into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(
            r.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("scope=\"identity\"")
        );
    }
}
