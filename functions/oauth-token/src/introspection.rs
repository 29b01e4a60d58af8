//! `POST /oauth/introspect` (RFC 7662), for confidential clients (resource servers among
//! them). An access token is active while its signature, issuer and expiry hold, its `jti`
//! was not revoked and its grant (if it has one) is live. A refresh token is active only
//! for the client it was issued to, while unspent and its grant is live. Everything else
//! is `{"active": false}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use identity_shared::AppState;
use identity_shared::http::oauth::{OAuthError, no_store, parse_unique_form};
use identity_shared::oauth::{OAuthClient, RefreshTokens};
use identity_shared::tokens::{self, AccessClaims};
use serde_json::{Value, json};

use crate::answer::require_form;
use crate::client_auth;

pub async fn introspect(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Response {
    match run(state, headers, body).await {
        Ok(v) => (no_store(), Json(v)).into_response(),
        Err(e) => {
            tracing::info!(error = e.code.as_str(), "introspection refused");
            e.into_response()
        }
    }
}

fn inactive() -> Value {
    json!({ "active": false })
}

async fn run(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    require_form(headers)?;
    let mut form = parse_unique_form(body)?;
    let client = client_auth::authenticate(state, headers, &mut form).await?;
    if client.public {
        return Err(OAuthError::invalid_client(
            "introspection is for confidential clients",
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let keys = state
        .secrets
        .signing_keys()
        .await
        .map_err(|e| OAuthError::internal("signing keys", e))?;
    if let Ok(claims) = tokens::verify(&keys, token, &state.config.base_url, state.now()) {
        return access_token(state, claims).await;
    }
    refresh_token(state, &client, token).await
}

async fn access_token(state: &AppState, c: AccessClaims) -> Result<Value, OAuthError> {
    let active = identity_shared::oauth::access_token_active(&state.store, &c)
        .await
        .map_err(|e| OAuthError::internal("token state read", e))?;
    if !active {
        return Ok(inactive());
    }
    Ok(json!({
        "active": true,
        "token_type": "Bearer",
        "scope": c.scope,
        "client_id": c.client_id,
        "sub": c.sub,
        "aud": c.aud,
        "iss": c.iss,
        "exp": c.exp,
        "iat": c.iat,
        "jti": c.jti,
    }))
}

async fn refresh_token(
    state: &AppState,
    client: &OAuthClient,
    token: &str,
) -> Result<Value, OAuthError> {
    let record = state
        .store
        .live_refresh(token)
        .await
        .map_err(|e| OAuthError::internal("refresh read", e))?;
    Ok(match record {
        Some(r) if r.client_id == client.client_id => json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": r.scope,
            "client_id": r.client_id,
            "sub": r.account_id,
            "iss": state.config.base_url,
            "exp": r.expires_at,
            "iat": r.issued_at,
        }),
        _ => inactive(),
    })
}
