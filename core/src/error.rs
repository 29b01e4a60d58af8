//! The OAuth 2.0 error codes (RFC 6749 §4.1.2.1, §5.2; RFC 7009 and RFC 8628 where they add
//! one) the decisions answer with; `identity-shared` renders them (JSON or a redirect).

/// An OAuth error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1: the authorization endpoint's answer to another response type.
    UnsupportedResponseType,
    InvalidScope,
    UnsupportedTokenType,
    ServerError,
    TemporarilyUnavailable,
    /// RFC 8628 §3.5: the device flow's token polling answers.
    AuthorizationPending,
    SlowDown,
    AccessDenied,
    ExpiredToken,
    /// Throttled (429 with `Retry-After`): too many failures from this address.
    TooManyRequests,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::TooManyRequests => "too_many_requests",
        }
    }

    /// The HTTP status each code carries as JSON: 401 for `invalid_client`, 5xx for ours,
    /// 429 when throttled, else 400.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            Self::TooManyRequests => 429,
            _ => 400,
        }
    }
}
