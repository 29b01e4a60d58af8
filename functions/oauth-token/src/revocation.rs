//! `POST /oauth/revoke` (RFC 7009). The client authenticates; the answer is 200 whether
//! or not the token was known, valid or the client's (nothing is revealed about tokens of
//! others). A refresh token revokes its whole grant; an access token is revoked by its
//! `jti` (its grant and refresh token live on).

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::http::oauth::{OAuthError, no_store, parse_unique_form};
use identity_shared::oauth::{Grants, RefreshTokens, RevokedTokens};
use identity_shared::tokens;

use crate::answer::require_form;
use crate::client_auth;

pub async fn revoke(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Response {
    match run(state, headers, body).await {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(e) => {
            tracing::info!(error = e.code.as_str(), "revocation refused");
            e.into_response()
        }
    }
}

async fn run(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    require_form(headers)?;
    let mut form = parse_unique_form(body)?;
    let client = client_auth::authenticate(state, headers, &mut form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    // `token_type_hint` only orders the lookups; an unknown hint is ignored (§2.1).
    let access_first = form.get("token_type_hint").map(String::as_str) == Some("access_token");
    let looks_like_jwt = token.matches('.').count() == 2;
    if access_first || looks_like_jwt {
        if revoke_access(state, &client.client_id, token).await? {
            return Ok(());
        }
        revoke_refresh(state, &client.client_id, token).await?;
    } else if !revoke_refresh(state, &client.client_id, token).await? {
        revoke_access(state, &client.client_id, token).await?;
    }
    Ok(())
}

/// `true` when the token was one of this client's refresh tokens (now revoked).
async fn revoke_refresh(
    state: &AppState,
    client_id: &str,
    token: &str,
) -> Result<bool, OAuthError> {
    let record = state
        .store
        .refresh_record(token)
        .await
        .map_err(|e| OAuthError::internal("refresh read", e))?;
    match record {
        Some(r) if r.client_id == client_id => {
            state
                .store
                .revoke_grant(&r.gid)
                .await
                .map_err(|e| OAuthError::internal("grant revoke", e))?;
            tracing::info!(client_id, gid = %r.gid, "refresh token revoked with its grant");
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// `true` when the token was one of this client's unexpired access tokens (now revoked).
async fn revoke_access(state: &AppState, client_id: &str, token: &str) -> Result<bool, OAuthError> {
    let keys = state
        .secrets
        .signing_keys()
        .await
        .map_err(|e| OAuthError::internal("signing keys", e))?;
    match tokens::verify(&keys, token, &state.config.base_url, state.now()) {
        Ok(claims) if claims.client_id == client_id => {
            state
                .store
                .revoke_jti(&claims.jti, claims.exp)
                .await
                .map_err(|e| OAuthError::internal("jti revoke", e))?;
            tracing::info!(client_id, "access token revoked");
            Ok(true)
        }
        _ => Ok(false),
    }
}
