//! RFC 8628: `POST /oauth/device/authorize` (a device asks for a device code and a user
//! code) and the `urn:ietf:params:oauth:grant-type:device_code` grant of the token
//! endpoint (the device polls until the person approves at `/device`).

use crate::answer::{Access, answer, requested_scopes, require_form, signing_keys};
use crate::client_auth;
use axum::Json;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use identity_shared::AppState;
use identity_shared::http::oauth::{OAuthError, OAuthErrorCode, no_store, parse_unique_form};
use identity_shared::oauth::OAuthClient;
use identity_shared::oauth::code::Issued;
use identity_shared::oauth::device::{DEVICE_TTL_SECS, DeviceRequests, Polled};
use identity_shared::throttle::{Action, Attempt, Throttling, Verdict};

/// `POST /oauth/device/authorize`.
pub async fn authorize(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    match start(state, address, headers, body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = e.code.as_str(), "device authorization refused");
            e.into_response()
        }
    }
}

async fn start(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    require_form(headers)?;
    // Anyone may start one, and a start writes: each counts against its address, before
    // anything else is read or stored.
    let limits = &state.config.limits;
    let who = Attempt {
        subject: None,
        address,
        device: None,
    };
    if let Verdict::Locked(locked) = state
        .store
        .throttle_check(Action::DeviceStart, limits, &who)
        .await
        .map_err(|e| OAuthError::internal("throttle", e))?
    {
        return Err(OAuthError::throttled(locked));
    }
    state
        .store
        .throttle_count(Action::DeviceStart, limits, &who)
        .await
        .map_err(|e| OAuthError::internal("throttle", e))?;
    let mut form = parse_unique_form(body)?;
    let client = client_auth::authenticate(state, headers, &mut form).await?;
    let allowed = client.scopes();
    let scopes = match requested_scopes(&form)? {
        Some(s) if !allowed.contains_all(&s) => {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "the requested scope is not registered for this client",
            ));
        }
        Some(s) => s,
        None => allowed,
    };
    let (device_code, request) = state
        .store
        .start_device_request(&client.client_id, &scopes.to_string(), address)
        .await
        .map_err(|e| OAuthError::internal("device request", e))?;
    let verification_uri = state.config.url("/device");
    let mut answer = serde_json::json!({
        "device_code": device_code.expose_secret(),
        "user_code": request.user_code,
        "verification_uri": verification_uri,
        "expires_in": DEVICE_TTL_SECS,
        "interval": request.interval,
    });
    // RFC 8628 §3.3.1's link with the code in it is offered only where a link may carry the
    // approval: a request for the whole account (`global`) wants its code typed.
    if !request.needs_typed_code() {
        answer["verification_uri_complete"] = serde_json::json!(format!(
            "{verification_uri}?{}",
            serde_urlencoded::to_string([("user_code", request.user_code.as_str())])
                .unwrap_or_default()
        ));
    }
    tracing::info!(client_id = %client.client_id, "device authorization started");
    Ok((no_store(), Json(answer)).into_response())
}

/// The token endpoint's device_code grant (RFC 8628 §3.4–3.5).
fn already_used() -> OAuthError {
    OAuthError::invalid_grant("the device code is invalid, already used, or another client's")
}

pub async fn token(
    state: &AppState,
    client: &OAuthClient,
    device_code: &str,
) -> Result<Response, OAuthError> {
    let keys = signing_keys(state).await?;
    let refresh_token = identity_shared::crypto::random_token();
    let polled = state
        .store
        .poll_device(device_code, &client.client_id, &refresh_token)
        .await
        .map_err(|e| OAuthError::internal("device poll", e))?;
    let pending = |code, text: &str| Err(OAuthError::new(code, text));
    let Issued { issue, refresh } = match polled {
        Polled::Issued(issued) => *issued,
        Polled::Pending => {
            return pending(
                OAuthErrorCode::AuthorizationPending,
                "the person has not answered yet",
            );
        }
        Polled::SlowDown => {
            return pending(OAuthErrorCode::SlowDown, "poll less often: wait 5 s more");
        }
        Polled::Denied => return pending(OAuthErrorCode::AccessDenied, "the person said no"),
        Polled::Expired => {
            return pending(OAuthErrorCode::ExpiredToken, "the device code has expired");
        }
        Polled::Revoked => return Err(OAuthError::invalid_grant("the authorization was revoked")),
        Polled::Invalid => return Err(already_used()),
    };
    tracing::info!(client_id = %client.client_id, gid = %issue.grant.gid, "device code exchanged");
    let access = Access::approved(&issue, &client.client_id, refresh.issued_at);
    answer(state, &keys, access, Some(refresh_token))
}
