//! What every grant of the token endpoint (and introspection and revocation) shares: the
//! form's shape, the requested scope, the signing keys, and the one success answer
//! ([`answer`], RFC 6749 §5.1).

use std::collections::HashMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use identity_shared::AppState;
use identity_shared::http::oauth::{OAuthError, no_store};
use identity_shared::oauth::Scopes;
use identity_shared::oauth::code::Issue;
use identity_shared::secret::SecretString;
use identity_shared::secrets::SigningKeys;
use identity_shared::tokens::{self, ACCESS_TOKEN_TTL, AccessClaims};

/// Refuses a body that is not a form (RFC 6749 §3.2: `application/x-www-form-urlencoded`).
pub fn require_form(headers: &HeaderMap) -> Result<(), OAuthError> {
    let is_form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if is_form {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    }
}

pub fn requested_scopes(form: &HashMap<String, String>) -> Result<Option<Scopes>, OAuthError> {
    identity_core::token_request::requested_scopes(form).map_err(|(c, d)| OAuthError::new(c, d))
}

pub async fn signing_keys(state: &AppState) -> Result<std::sync::Arc<SigningKeys>, OAuthError> {
    state
        .secrets
        .signing_keys()
        .await
        .map_err(|e| OAuthError::internal("signing keys", e))
}

/// The successful answer (RFC 6749 §5.1), never cached.
pub fn issued(
    access_token: SecretString,
    scope: &Scopes,
    refresh_token: Option<SecretString>,
) -> Response {
    let mut body = serde_json::json!({
        "access_token": access_token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL,
        "scope": scope.to_string(),
    });
    if let Some(r) = refresh_token {
        body["refresh_token"] = r.expose_secret().into();
    }
    (no_store(), Json(body)).into_response()
}

pub fn sign(keys: &SigningKeys, claims: &AccessClaims) -> Result<SecretString, OAuthError> {
    tokens::issue(keys, claims).map_err(|e| OAuthError::internal("token signing", e))
}

/// What an access token is for: whom, which client, which scopes, on which grant, and when
/// a person approved it (RFC 9068 `auth_time`; `None`: no person did).
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub subject: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a Scopes,
    pub gid: Option<&'a str>,
    pub auth_time: Option<i64>,
    pub now: i64,
}

impl<'a> Access<'a> {
    /// A token a person approved just now (`at`: a code exchange, a device approval), on
    /// the grant the approval made.
    pub fn approved(issue: &'a Issue, client_id: &'a str, at: i64) -> Self {
        Access {
            subject: &issue.account_id,
            client_id,
            scopes: &issue.scopes,
            gid: Some(&issue.grant.gid),
            auth_time: Some(at),
            now: at,
        }
    }
}

/// Every grant's success (node-oidc-provider's `grant_common`): the access token signed,
/// with the refresh token when there is one, as RFC 6749 §5.1's answer.
pub fn answer(
    state: &AppState,
    keys: &SigningKeys,
    access: Access<'_>,
    refresh_token: Option<SecretString>,
) -> Result<Response, OAuthError> {
    let mut claims = AccessClaims::new(
        &state.config.base_url,
        access.subject,
        access.client_id,
        &access.scopes.to_string(),
        access.gid,
        access.now,
    );
    claims.auth_time = access.auth_time;
    let token = sign(keys, &claims)?;
    Ok(issued(token, access.scopes, refresh_token))
}
