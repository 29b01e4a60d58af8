//! Bearer-token routes (RFC 6750): the one reader of `Authorization: Bearer`, and the one
//! way such a route refuses (401 with `WWW-Authenticate: Bearer …`, or 403
//! `insufficient_scope` naming the scope needed).

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::JsonError;

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
