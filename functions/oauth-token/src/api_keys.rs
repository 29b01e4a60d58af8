//! Long-lived API keys over the API (Heroku's `/oauth/authorizations`), for
//! `identity authorizations create / list / revoke`:
//!
//! - `POST /oauth/authorizations` `{"description"?,"expires_in"?}`: 201 with the key's
//!   `token`, shown this once (only its hash is kept). Needs an access token of the CLI's
//!   own client from a login approved in the last 5 minutes (`identity login`): no API key,
//!   third-party, CI or refreshed token makes one (`identity_core::api_key::may_mint`). The
//!   key records that login's grant and ends with it.
//! - `GET /oauth/authorizations`: the caller's keys that still act (never a token).
//! - `DELETE /oauth/authorizations/{id}`.
//!
//! Bearer with the `global` scope (an API key has it). Keys end when revoked, when they
//! expire, when the login that made them ends, and when the account's keys end (a move to
//! SSO, a reset, a block, "sign out everywhere").

use axum::body::Bytes;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::accounts::{Account, Accounts};
use identity_shared::api_keys::{ApiKey, ApiKeyError, ApiKeys};
use identity_shared::http::Internal;
use identity_shared::http::bearer::{self, Audience, BearerRefusal, Caller, Denied};
use identity_shared::oauth::client::CLI_CLIENT_ID;
use serde::Deserialize;

use crate::refused::{Refused, answer};

/// The scope that manages API keys.
pub const SCOPE: &str = "global";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Refused> {
    let (caller, _) = bearer::authenticate(state, headers, Audience::Issuer, &[SCOPE]).await?;
    Ok(caller)
}

/// The caller's account, as loaded now (a token whose account is gone is invalid).
async fn account_of(state: &AppState, caller: &Caller) -> Result<Account, Refused> {
    Ok(state
        .store
        .account(&caller.sub)
        .await
        .map_err(Internal::from_display("account read"))?
        .ok_or(Denied::Refused(BearerRefusal::Invalid))?)
}

/// `POST /oauth/authorizations`.
pub async fn create(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Response {
    answer(create_with(state, headers, body).await)
}

async fn create_with(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(StatusCode, serde_json::Value), Refused> {
    let caller = caller(state, headers).await?;
    identity_core::api_key::may_mint(caller.minter(), CLI_CLIENT_ID, state.now()).map_err(
        |why| {
            tracing::warn!("api key refused: not a fresh login of the CLI");
            Refused::new(StatusCode::FORBIDDEN, "forbidden", why)
        },
    )?;
    let gid = caller.gid.clone().unwrap_or_default();
    let new: NewKey = if body.iter().all(u8::is_ascii_whitespace) {
        NewKey::default()
    } else {
        serde_json::from_slice(body).map_err(|_| {
            Refused::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body must be JSON with optional \"description\" and \"expires_in\" (seconds)",
            )
        })?
    };
    let account = account_of(state, &caller).await?;
    let (key, token) = state
        .store
        .create_api_key(&account, &gid, new.description.as_deref(), new.expires_in)
        .await
        .map_err(|e| match e {
            ApiKeyError::Invalid(why) => {
                Refused::new(StatusCode::BAD_REQUEST, "invalid_request", why)
            }
            ApiKeyError::Store(e) => Internal::new("api key write", e).into(),
        })?;
    tracing::info!(key_id = %key.id, "api key created");
    let mut out = key.public_json();
    out["token"] = serde_json::json!(token.expose_secret());
    Ok((StatusCode::CREATED, out))
}

/// `GET /oauth/authorizations`.
pub async fn list(state: &AppState, headers: &HeaderMap) -> Response {
    answer(
        async {
            let account = account_of(state, &caller(state, headers).await?).await?;
            let keys = state
                .store
                .api_keys_of(&account)
                .await
                .map_err(Internal::from_display("api keys read"))?;
            Ok((
                StatusCode::OK,
                serde_json::json!({
                    "authorizations": keys.iter().map(ApiKey::public_json).collect::<Vec<_>>()
                }),
            ))
        }
        .await,
    )
}

/// `DELETE /oauth/authorizations/{id}`.
pub async fn revoke(state: &AppState, headers: &HeaderMap, id: &str) -> Response {
    answer(
        async {
            let caller = caller(state, headers).await?;
            if !state
                .store
                .revoke_api_key(&caller.sub, id)
                .await
                .map_err(Internal::from_display("api key revoke"))?
            {
                return Err(Refused::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "you have no API key with this id",
                ));
            }
            tracing::info!(key_id = %id, "api key revoked");
            Ok((StatusCode::OK, serde_json::json!({ "revoked": id })))
        }
        .await,
    )
}
