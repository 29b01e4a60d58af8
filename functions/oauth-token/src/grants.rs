//! `POST /oauth/token` as a pipeline (node-oidc-provider's shape): no-cache headers on
//! every answer → parse the form (a repeated parameter is refused) → authenticate the
//! client → dispatch by `grant_type` to one handler per grant.

use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use identity_core::token_request::TokenRequest;
use identity_shared::AppState;
use identity_shared::http::oauth::{OAuthError, OAuthErrorCode, parse_unique_form};
use identity_shared::oauth::Scopes;
use identity_shared::oauth::code::{self, Redeemed};
use identity_shared::oauth::refresh::Rotation;
use identity_shared::oauth::{
    AuthCodes, OAuthClient, OAuthSettings, RefreshOutcome, RefreshTokens,
};

use crate::answer::{Access, answer, require_form, signing_keys};
use crate::client_auth;

/// The whole token endpoint: every failure is an RFC 6749 §5.2 JSON error.
pub async fn token(
    state: &AppState,
    settings: &OAuthSettings,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    match dispatch(state, settings, headers, body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = e.code.as_str(), "token request refused");
            e.into_response()
        }
    }
}

async fn dispatch(
    state: &AppState,
    settings: &OAuthSettings,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    require_form(headers)?;
    let mut form = parse_unique_form(body)?;
    let client = client_auth::authenticate(state, headers, &mut form).await?;
    let unsupported = || {
        OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:device_code",
        )
    };
    let request = TokenRequest::parse(&form).map_err(|(code, description)| match code {
        OAuthErrorCode::UnsupportedGrantType => unsupported(),
        code => OAuthError::new(code, description),
    })?;
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let presented = code::Presented {
                client_id: &client.client_id,
                redirect_uri,
                code_verifier,
            };
            authorization_code(state, &client, code, presented).await
        }
        TokenRequest::RefreshToken {
            refresh_token: token,
            scope,
        } => refresh_token(state, settings, &client, token, scope).await,
        TokenRequest::ClientCredentials { scope } => {
            client_credentials(state, &client, scope).await
        }
        TokenRequest::DeviceCode { device_code } => {
            crate::device::token(state, &client, device_code).await
        }
        // The JWT bearer grant has its own endpoint (/oauth/jwt/token).
        TokenRequest::JwtBearer { .. } => Err(unsupported()),
    }
}

/// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6), as one plan (`identity_core::code::redeem`):
/// the code is spent in the same write that records its tokens, so a failure anywhere
/// leaves it either unspent with no tokens (the client may try again) or spent with its
/// tokens; an exchange that is refused spends it alone, so a wrong verifier cannot be tried
/// twice; a second use by its client revokes what the first issued.
async fn authorization_code(
    state: &AppState,
    client: &OAuthClient,
    code: &str,
    presented: code::Presented<'_>,
) -> Result<Response, OAuthError> {
    let keys = signing_keys(state).await?;
    let redemption = state
        .store
        .redeem_code(code, presented)
        .await
        .map_err(|e| OAuthError::internal("code redemption", e))?;
    let code::Issued { issue, refresh } = match redemption.outcome {
        Redeemed::Issued(issued) => *issued,
        Redeemed::Refused(code::Refusal::Corrupt) => {
            return Err(OAuthError::internal(
                "code record",
                code::Refusal::Corrupt.description(),
            ));
        }
        Redeemed::Refused(r) => return Err(OAuthError::invalid_grant(r.description())),
        Redeemed::Reused { gid } => return Err(reused(client, &gid)),
        Redeemed::SpentElsewhere => {
            tracing::warn!(client_id = %client.client_id, "a spent authorization code presented by another client: nothing revoked");
            return Err(invalid_code());
        }
        Redeemed::Invalid => return Err(invalid_code()),
    };
    tracing::info!(client_id = %client.client_id, gid = %issue.grant.gid, "authorization code exchanged");
    let access = Access::approved(&issue, &client.client_id, refresh.issued_at);
    answer(state, &keys, access, Some(redemption.refresh_token))
}

fn reused(client: &OAuthClient, gid: &str) -> OAuthError {
    tracing::warn!(client_id = %client.client_id, gid = %gid, "authorization code used twice: its grant is revoked");
    OAuthError::invalid_grant(
        "the authorization code was already used; the tokens issued for it are revoked",
    )
}

fn invalid_code() -> OAuthError {
    OAuthError::invalid_grant("the authorization code is invalid, expired or already used")
}

/// RFC 6749 §6, rotating: the presented token is spent, its successor returned.
async fn refresh_token(
    state: &AppState,
    settings: &OAuthSettings,
    client: &OAuthClient,
    presented: &str,
    requested: Option<Scopes>,
) -> Result<Response, OAuthError> {
    let keys = signing_keys(state).await?;
    let outcome = state
        .store
        .rotate_refresh(
            presented,
            &client.client_id,
            requested.as_ref(),
            settings.refresh_grace_secs,
        )
        .await
        .map_err(|e| OAuthError::internal("refresh rotation", e))?;
    match outcome {
        RefreshOutcome::Rotated(rotation) => {
            let Rotation {
                token,
                record,
                grant,
            } = *rotation;
            let scopes = requested.unwrap_or_else(|| record.scopes());
            let access = Access {
                subject: &record.account_id,
                client_id: &client.client_id,
                scopes: &scopes,
                gid: Some(&grant.gid),
                // The person's approval behind the family stays its time (RFC 9068).
                auth_time: record.auth_time,
                now: state.now(),
            };
            answer(state, &keys, access, Some(token))
        }
        RefreshOutcome::Invalid => Err(OAuthError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        )),
        RefreshOutcome::ScopeTooWide => Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            "the requested scope exceeds the scope of the refresh token",
        )),
        RefreshOutcome::RetryWithinGrace => Err(OAuthError::invalid_grant(
            "the refresh token was just used; use the refresh token that request returned",
        )),
        RefreshOutcome::Reused { gid } => {
            tracing::warn!(client_id = %client.client_id, gid = %gid, "spent refresh token used again: its grant is revoked");
            Err(OAuthError::invalid_grant(
                "the refresh token was already used; its authorization is revoked",
            ))
        }
    }
}

/// RFC 6749 §4.4: a confidential client on its own behalf; no refresh token.
async fn client_credentials(
    state: &AppState,
    client: &OAuthClient,
    requested: Option<Scopes>,
) -> Result<Response, OAuthError> {
    if client.public {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "a public client cannot use client_credentials",
        ));
    }
    let allowed = client.scopes();
    let scopes = match requested {
        Some(s) if !allowed.contains_all(&s) => {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "the requested scope is not registered for this client",
            ));
        }
        Some(s) => s,
        None => allowed,
    };
    let keys = signing_keys(state).await?;
    let access = Access {
        subject: &client.client_id,
        client_id: &client.client_id,
        scopes: &scopes,
        gid: None,
        auth_time: None,
        now: state.now(),
    };
    answer(state, &keys, access, None)
}
