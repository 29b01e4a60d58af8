//! `GET /oauth/userinfo`: the signed-in user of a bearer access token, in the OpenID Connect
//! UserInfo shape `{"sub","email","email_verified"}` (so it serves OIDC later).
//!
//! The token must be one of ours for this issuer (not one limited to an app), active as
//! introspection judges it (`oauth::access_token_active`), carry the `identity` scope, and
//! name an account that exists. `email_verified` is whether the account is active (a pending
//! account has not followed its welcome link yet). Errors are RFC 6750's.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::accounts::{AccountStatus, Accounts};
use identity_shared::http::Internal;
use identity_shared::http::bearer::{self, BearerRefusal};
use identity_shared::http::oauth::no_store;
use identity_shared::oauth::access_token_active;
use identity_shared::tokens;

/// The scope that lets a client read who the user is.
pub const SCOPE: &str = "identity";

enum Refused {
    Bearer(BearerRefusal),
    Internal(Internal),
}

impl From<BearerRefusal> for Refused {
    fn from(b: BearerRefusal) -> Self {
        Refused::Bearer(b)
    }
}

impl From<Internal> for Refused {
    fn from(e: Internal) -> Self {
        Refused::Internal(e)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Bearer(b) => b.into_response(),
            Refused::Internal(e) => e.json().into_response(),
        }
    }
}

pub async fn userinfo(state: &AppState, headers: &HeaderMap) -> Response {
    match run(state, headers).await {
        Ok(body) => (StatusCode::OK, no_store(), Json(body)).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn run(state: &AppState, headers: &HeaderMap) -> Result<serde_json::Value, Refused> {
    let token = bearer::token(headers).ok_or(BearerRefusal::Missing)?;
    let keys = state
        .secrets
        .signing_keys()
        .await
        .map_err(Internal::from_display("signing keys"))?;
    let claims = tokens::verify(&keys, token, &state.config.base_url, state.now())
        .map_err(|_| BearerRefusal::Invalid)?;
    if claims.app_id().is_some() {
        // A token limited to one app is not for this resource.
        return Err(BearerRefusal::Invalid.into());
    }
    if !access_token_active(&state.store, &claims)
        .await
        .map_err(Internal::from_display("token state read"))?
    {
        return Err(BearerRefusal::Invalid.into());
    }
    if !claims.scope.split(' ').any(|s| s == SCOPE) {
        return Err(BearerRefusal::Scope(SCOPE).into());
    }
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
