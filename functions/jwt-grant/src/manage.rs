//! An app's named authorizations through the API, for developers and CI
//! (`identity authorizations jwt add / list / remove`):
//!
//! - `POST /apps/{app}/authorizations` `{"name","alias"?,"assertion","scope"?}`: the caller
//!   signed the RFC 7523 assertion with its own key (the key never leaves its machine); the
//!   grant runs on it (login history `via: cli`, throttled per address as the token
//!   endpoint is) and the authorization is saved as the operator's command saves it. 201
//!   with the authorization (never its token).
//! - `GET /apps/{app}/authorizations`: the app's authorizations (never their tokens).
//! - `DELETE /apps/{app}/authorizations/{name}`.
//!
//! Bearer: an access token of ours for this issuer, or an API key; the caller must be the
//! app's owner or one of its admins (read from the store now). Writing needs `global` or
//! `write-protected`, reading `global` or `read-protected`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::authorizations::{NamedAuthorization, NamedAuthorizations};
use identity_shared::http::bearer::{self, Audience};
use identity_shared::http::oauth::no_store;
use identity_shared::http::source_address;
use serde::Deserialize;

use crate::fetch::{READ_SCOPES, Refusal, app_of_owner_or_admin, internal};
use crate::grant::{Origin, Via};
use crate::named::{self, NotMade};

/// Scopes that allow adding and removing named authorizations.
pub const WRITE_SCOPES: [&str; 2] = ["write-protected", "global"];

/// Largest body read: an assertion signed with a 4096-bit RSA key is under 2 KiB.
const MAX_BODY: usize = 32 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNamed {
    name: String,
    #[serde(default)]
    alias: Option<String>,
    assertion: String,
    #[serde(default)]
    scope: Option<String>,
}

fn answer(result: Result<(StatusCode, serde_json::Value), Refusal>) -> Response {
    match result {
        Ok((status, body)) => (status, no_store(), Json(body)).into_response(),
        Err(r) => r.into_response(),
    }
}

/// `POST /apps/{app}/authorizations`.
pub async fn create(
    State(state): State<AppState>,
    Path(app_ref): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let source_ip = source_address(request.extensions());
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await;
    answer(create_with(&state, &app_ref, &parts.headers, body.ok(), source_ip).await)
}

async fn create_with(
    state: &AppState,
    app_ref: &str,
    headers: &HeaderMap,
    body: Option<Bytes>,
    source_ip: Option<std::net::IpAddr>,
) -> Result<(StatusCode, serde_json::Value), Refusal> {
    let (caller, _) = bearer::authenticate(state, headers, Audience::Issuer, &WRITE_SCOPES).await?;
    let app = app_of_owner_or_admin(state, app_ref, &caller).await?;
    let body = body.ok_or_else(|| {
        Refusal::BadRequest(format!("the request body is larger than {MAX_BODY} bytes"))
    })?;
    let new: NewNamed = serde_json::from_slice(&body).map_err(|_| {
        Refusal::BadRequest(
            "the body must be JSON {\"name\",\"assertion\"} with optional \"alias\" and \"scope\""
                .into(),
        )
    })?;
    let origin = Origin {
        source_ip,
        via: Via::Cli,
        app_id: Some(app.id.clone()),
    };
    let saved = named::add(
        state,
        &new.name,
        new.alias.as_deref(),
        &new.assertion,
        new.scope.as_deref(),
        &origin,
    )
    .await
    .map_err(|e| match e {
        NotMade::Invalid(e) => Refusal::BadRequest(e.to_string()),
        NotMade::Refused(e) => Refusal::Grant(e),
        NotMade::Internal(e) => internal("named authorization")(e),
    })?;
    tracing::info!(app_id = %app.id, "named authorization added through the API");
    let mut out = saved.public_json();
    out["app"] = serde_json::json!(app.name);
    out["status"] = serde_json::json!("connected");
    Ok((StatusCode::CREATED, out))
}

/// `GET /apps/{app}/authorizations`.
pub async fn list(
    State(state): State<AppState>,
    Path(app_ref): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            let (caller, _) =
                bearer::authenticate(&state, &headers, Audience::IssuerOrApp, &READ_SCOPES)
                    .await?;
            let app = app_of_owner_or_admin(&state, &app_ref, &caller).await?;
            let list = state
                .store
                .list_authorizations(&app.id)
                .await
                .map_err(internal("authorizations read"))?;
            Ok((
                StatusCode::OK,
                serde_json::json!({
                    "app": app.name,
                    "authorizations": list.iter().map(NamedAuthorization::public_json).collect::<Vec<_>>(),
                }),
            ))
        }
        .await,
    )
}

/// `DELETE /apps/{app}/authorizations/{name}`.
pub async fn remove(
    State(state): State<AppState>,
    Path((app_ref, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            let (caller, _) =
                bearer::authenticate(&state, &headers, Audience::Issuer, &WRITE_SCOPES).await?;
            let app = app_of_owner_or_admin(&state, &app_ref, &caller).await?;
            if !state
                .store
                .remove_authorization(&app.id, &name)
                .await
                .map_err(internal("authorization remove"))?
            {
                return Err(Refusal::NotFound(
                    "the app has no authorization with this developer name",
                ));
            }
            tracing::info!(app_id = %app.id, "named authorization removed through the API");
            Ok((
                StatusCode::OK,
                serde_json::json!({ "app": app.name, "removed": name }),
            ))
        }
        .await,
    )
}
