//! `GET /oauth/userinfo`: the signed-in user of a bearer access token, in the OpenID Connect
//! UserInfo shape `{"sub","email","email_verified"}` (so it serves OIDC later).
//!
//! The token must be one of ours for this issuer (not one limited to an app), active as
//! introspection judges it, and carry the `identity` scope (`http::bearer::authenticate`),
//! and name an account that exists. `email_verified` is whether the account is active (a pending
//! account has not followed its welcome link yet). Errors are RFC 6750's.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::accounts::{AccountStatus, Accounts};
use identity_shared::http::Internal;
use identity_shared::http::bearer::{self, Audience, BearerRefusal, Denied};
use identity_shared::http::oauth::no_store;

/// The scope that lets a client read who the user is.
pub const SCOPE: &str = "identity";

pub async fn userinfo(state: &AppState, headers: &HeaderMap) -> Response {
    match run(state, headers).await {
        Ok(body) => (StatusCode::OK, no_store(), Json(body)).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn run(state: &AppState, headers: &HeaderMap) -> Result<serde_json::Value, Denied> {
    let (claims, _) = bearer::authenticate(state, headers, Audience::Issuer, &[SCOPE]).await?;
    let account = state
        .store
        .account(&claims.sub)
        .await
        .map_err(Internal::from_display("account read"))?
        .ok_or(BearerRefusal::Invalid)?;
    Ok(serde_json::json!({
        "sub": account.id,
        "email": account.email,
        "email_verified": account.status == AccountStatus::Active,
    }))
}
