//! `GET /.well-known/oauth-authorization-server` (RFC 8414, at the root: the issuer has no
//! path) and `GET /.well-known/jwks.json` (current and previous signing keys). Both may be
//! cached briefly by anyone: a rotated key shows within minutes, and the previous key stays
//! published, so tokens it signed still verify meanwhile.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::header;
use identity_shared::AppState;
use identity_shared::http::Internal;
use identity_shared::oauth::scope::VOCABULARY;
use serde_json::{Value, json};

/// How long the metadata and the key set may be cached.
pub const CACHE_CONTROL: &str = "public, max-age=300";

/// What the server supports, as RFC 8414 lists it.
pub fn metadata(issuer: &str) -> Value {
    let url = |path: &str| format!("{issuer}{path}");
    json!({
        "issuer": issuer,
        "authorization_endpoint": url("/oauth/authorize"),
        "token_endpoint": url("/oauth/token"),
        "jwks_uri": url("/.well-known/jwks.json"),
        "revocation_endpoint": url("/oauth/revoke"),
        "introspection_endpoint": url("/oauth/introspect"),
        "device_authorization_endpoint": url("/oauth/device/authorize"),
        "scopes_supported": VOCABULARY.iter().map(|d| d.name).collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    })
}

pub async fn metadata_route(state: &AppState) -> Response {
    (
        [(header::CACHE_CONTROL, CACHE_CONTROL)],
        Json(metadata(&state.config.base_url)),
    )
        .into_response()
}

pub async fn jwks_route(state: &AppState) -> Response {
    match state.secrets.signing_keys().await {
        Ok(keys) => ([(header::CACHE_CONTROL, CACHE_CONTROL)], Json(keys.jwks())).into_response(),
        Err(e) => Internal::new("signing keys", e).json().into_response(),
    }
}
