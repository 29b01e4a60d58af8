//! `GET /apps/{app}/authorizations/{name_or_alias}`: an app fetches the credentials of one
//! of its named authorizations (AppLink's `getAuthorization` / `getAuthorizationByAlias`).
//!
//! Authentication: `Authorization: Bearer` with an access token of ours (from the token
//! endpoint or the JWT grant), verified with [`tokens::verify`] and, as introspection does,
//! not revoked (by itself or through its grant); its scope must hold
//! `read-protected` or `global` (the scopes that read an app's config on the platform),
//! its subject must be the app's owner or an admin of it, read from the store now (a
//! member or collaborator cannot turn a read token into another user's token), and a
//! token limited to an app (its audience) works for that app only. The token handed out
//! is itself limited to the app (`identity admin authorization add` has it issued so).
//! The credentials are withheld once the access token has expired or when the user is no
//! longer pre-authorized for the JWT client (or the client is gone).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use identity_shared::AppState;
use identity_shared::apps::{App, Apps, Role};
use identity_shared::authorizations::{NamedAuthorizations, Sealing, TokenSeal};
use identity_shared::http::bearer::{self, Audience, BearerRefusal, Caller, Denied};
use identity_shared::http::oauth::{OAuthError, no_store};
use identity_shared::http::{Internal, JsonError};
use identity_shared::jwt_clients::JwtClients;
use identity_shared::oauth::access_token_active;
use identity_shared::tokens;

/// Scopes that allow reading named authorizations.
pub const READ_SCOPES: [&str; 2] = ["read-protected", "global"];
const GONE_EXPIRED: &str =
    "the authorization's access token has expired; run identity admin authorization add again";

pub(crate) enum Refusal {
    BadRequest(String),
    /// The JWT grant's own refusal (RFC 6749 shape).
    Grant(OAuthError),
    Bearer(BearerRefusal),
    NotFound(&'static str),
    Forbidden(&'static str),
    Gone(&'static str),
    Internal(Internal),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (error, challenge): (JsonError, Option<&'static str>) = match self {
            Refusal::Bearer(b) => return b.into_response(),
            Refusal::Grant(e) => return e.into_response(),
            Refusal::BadRequest(why) => (
                JsonError::new(StatusCode::BAD_REQUEST, "invalid_request", why),
                None,
            ),
            Refusal::NotFound(what) => (
                JsonError::new(StatusCode::NOT_FOUND, "not_found", what),
                None,
            ),
            Refusal::Forbidden(why) => (
                JsonError::new(StatusCode::FORBIDDEN, "forbidden", why),
                None,
            ),
            Refusal::Gone(why) => (
                JsonError::new(StatusCode::GONE, "authorization_unavailable", why),
                None,
            ),
            Refusal::Internal(e) => (e.json(), None),
        };
        let mut response = error.into_response();
        if let Some(c) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        response
    }
}

impl From<Denied> for Refusal {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Refused(r) => Refusal::Bearer(r),
            Denied::Internal(e) => Refusal::Internal(e),
        }
    }
}

pub(crate) fn internal<E: std::fmt::Display>(context: &'static str) -> impl Fn(E) -> Refusal {
    move |e| Refusal::Internal(Internal::new(context, e))
}

pub async fn fetch_authorization(
    State(state): State<AppState>,
    Path((app, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match fetch(&state, &app, &name, &headers).await {
        Ok(body) => (StatusCode::OK, no_store(), Json(body)).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn fetch(
    state: &AppState,
    app_ref: &str,
    name: &str,
    headers: &HeaderMap,
) -> Result<serde_json::Value, Refusal> {
    // As introspection judges it: a token revoked by itself (RFC 7009) or through its grant
    // is no longer accepted.
    let (caller, keys) =
        bearer::authenticate(state, headers, Audience::IssuerOrApp, &READ_SCOPES).await?;
    let now = state.now();
    let store = &state.store;
    let app = app_of_owner_or_admin(state, app_ref, &caller).await?;
    let auth = store
        .authorization(&app.id, name)
        .await
        .map_err(internal("authorization read"))?
        .ok_or(Refusal::NotFound(
            "the app has no authorization with this developer name or alias",
        ))?;
    let client = store
        .jwt_client(&auth.client_id)
        .await
        .map_err(internal("jwt client read"))?
        .ok_or(Refusal::Gone(
            "the authorization's JWT client no longer exists",
        ))?;
    if !client.is_pre_authorized(&auth.account_id) {
        return Err(Refusal::Gone(
            "the authorization's user is no longer pre-authorized for its JWT client",
        ));
    }
    if auth.expires_at <= now {
        return Err(Refusal::Gone(GONE_EXPIRED));
    }
    let seal = TokenSeal::from_signing_keys(&keys).map_err(internal("token seal"))?;
    let access_token = auth.access_token(&seal).ok_or(Refusal::Gone(
        "the authorization's credentials can no longer be opened (signing key rotated); run identity admin authorization add again",
    ))?;
    // The stored token answers as introspection would: revoked with its grant (the user
    // deauthorized, a certificate removed, a password reset, a move to SSO, a block).
    let stored = tokens::verify(
        &keys,
        access_token.expose_secret(),
        &state.config.base_url,
        now,
    )
    .map_err(|_| Refusal::Gone(GONE_EXPIRED))?;
    if !access_token_active(store, &stored)
        .await
        .map_err(internal("token state read"))?
    {
        return Err(Refusal::Gone(
            "the authorization's access token was revoked; run identity admin authorization add again",
        ));
    }
    Ok(serde_json::json!({
        "developer_name": auth.developer_name,
        "alias": auth.alias,
        "app_id": app.id,
        "app": app.name,
        "client_id": auth.client_id,
        "user": auth.email,
        "account_id": auth.account_id,
        "access_token": access_token.expose_secret(),
        "token_type": "Bearer",
        "instance_url": auth.instance_url,
        "scope": auth.scope,
        "issued_at": identity_shared::clock::rfc3339(auth.issued_at),
        "expires_at": identity_shared::clock::rfc3339(auth.expires_at),
        "expires_in": auth.expires_at - now,
    }))
}

/// The app `app_ref` (id or name) when the caller may manage its named authorizations: its
/// owner or one of its admins, read from the store now (a member or collaborator cannot turn
/// a token into another user's), through a token not limited to another app.
pub(crate) async fn app_of_owner_or_admin(
    state: &AppState,
    app_ref: &str,
    caller: &Caller,
) -> Result<App, Refusal> {
    const NO_APP: &str = "no such app, or the token's user has no role on it";
    const NOT_ADMIN: &str = "only the app's owner and its admins can manage its authorizations";
    let store = &state.store;
    let app = match store.app(app_ref).await.map_err(internal("app read"))? {
        Some(a) => Some(a),
        None => store
            .app_by_name(app_ref)
            .await
            .map_err(internal("app read"))?,
    }
    .ok_or(Refusal::NotFound(NO_APP))?;
    if caller.app_id.as_ref().is_some_and(|a| *a != app.id) {
        return Err(Refusal::NotFound(NO_APP));
    }
    let role = store
        .role_of(&app.id, &caller.sub)
        .await
        .map_err(internal("role read"))?
        .ok_or(Refusal::NotFound(NO_APP))?;
    if !matches!(role, Role::Owner | Role::Admin) {
        return Err(Refusal::Forbidden(NOT_ADMIN));
    }
    Ok(app)
}
