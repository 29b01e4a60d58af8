//! OAuth 2.0 error responses (RFC 6749 §5.2) and request parsing shared by the token
//! endpoint and the JWT bearer grant.

use std::collections::HashMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

pub use identity_core::error::OAuthErrorCode;

/// The HTTP status an OAuth error code carries.
fn status_of(code: OAuthErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An OAuth error: JSON `{"error","error_description"}` with the code's status and
/// `Cache-Control: no-store`, `Pragma: no-cache` (and `WWW-Authenticate` for 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    pub description: String,
    /// Seconds for `Retry-After` (throttling).
    pub retry_after: Option<i64>,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
        }
    }
    /// `too_many_requests` (429) with `Retry-After`.
    pub fn throttled(locked: crate::throttle::Locked) -> Self {
        Self {
            retry_after: Some(locked.retry_after),
            ..Self::new(
                OAuthErrorCode::TooManyRequests,
                format!(
                    "too many failed attempts from this address; try again in {}",
                    locked.wait_text()
                ),
            )
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, d)
    }
    /// Our failure: logged with its context, answered as `temporarily_unavailable`.
    pub fn internal(context: &'static str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(context, detail = %detail, "internal error");
        Self::new(
            OAuthErrorCode::TemporarilyUnavailable,
            "the service could not complete the request",
        )
    }
}

/// `?` on an [`super::Internal`] in an OAuth handler: logged, answered
/// `temporarily_unavailable` (503).
impl From<super::Internal> for OAuthError {
    fn from(e: super::Internal) -> Self {
        let json = e.json();
        Self::new(OAuthErrorCode::TemporarilyUnavailable, json.description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code.as_str(), "error_description": self.description });
        let mut response = (status_of(self.code), no_store(), Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.code == OAuthErrorCode::InvalidClient {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"identity\""),
            );
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, for every token-bearing response.
pub fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

/// Parses an `application/x-www-form-urlencoded` body, refusing any parameter that
/// appears twice (RFC 6749 §3.2: "Request and response parameters MUST NOT be included
/// more than once"). Empty values count as absent.
pub fn parse_unique_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = super::fields::read_unique(body).map_err(|e| match e {
        super::fields::FieldsError::Unreadable => {
            OAuthError::invalid_request("the body is not a valid form")
        }
        super::fields::FieldsError::Repeated(k) => {
            OAuthError::invalid_request(format!("parameter {k} is repeated"))
        }
        super::fields::FieldsError::TooMany => OAuthError::invalid_request(format!(
            "more than {} parameters",
            super::fields::MAX_FIELDS
        )),
    })?;
    out.retain(|_, v| !v.is_empty());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_parameters_are_refused() {
        let e = parse_unique_form(b"grant_type=a&grant_type=b").unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
        let e = parse_unique_form(b"a=1&a=").unwrap_err();
        assert_eq!(
            e.code,
            OAuthErrorCode::InvalidRequest,
            "an empty repeat is still a repeat"
        );
        let ok = parse_unique_form(b"a=1&b=x%20y&c=").unwrap();
        assert_eq!(ok.get("b").map(String::as_str), Some("x y"));
        assert!(!ok.contains_key("c"));
    }

    #[test]
    fn each_code_carries_its_status() {
        assert_eq!(
            status_of(OAuthErrorCode::InvalidClient),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_of(OAuthErrorCode::InvalidGrant),
            StatusCode::BAD_REQUEST
        );
        let r = OAuthError::invalid_client("x").into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[header::PRAGMA], "no-cache");
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
