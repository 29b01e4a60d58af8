//! `GET /partner/apps/{app_id}/collaborators`: the Platform API for partners. A partner
//! authenticates with an add-on's partner credentials (HTTP Basic, RFC 7617) and gets, for
//! an app that has that add-on, the people with a role on it, read from the store now:
//! partners call this instead of caching user lists.
//!
//! `200 [{"app":{"id","name"},"role","user":{"id","email"},"federated"}]`, owner first,
//! then admins, team members and collaborators. Errors are JSON: `401 unauthorized` (with
//! `WWW-Authenticate: Basic`), `404 not_found` (no such app), `403 forbidden` (the app does
//! not have this partner's add-on), `503 temporarily_unavailable`. Nothing is cacheable.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use identity_shared::AppState;
use identity_shared::addons::{Addons, PartnerApp};
use identity_shared::http::{Internal, JsonError, basic};
use identity_shared::secret::SecretString;

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Basic realm=\"identity partners\", charset=\"UTF-8\"";

fn unauthorized(description: &str) -> Response {
    let mut r =
        JsonError::new(StatusCode::UNAUTHORIZED, "unauthorized", description).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    r
}

/// The username and password of a single `Authorization: Basic` header. `None` for no
/// header, several, another scheme, or anything that does not decode.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, SecretString)> {
    basic::credentials(headers).ok().flatten()
}

/// `GET /partner/apps/{app_id}/collaborators`.
pub async fn collaborators(
    State(state): State<AppState>,
    Path(app_ref): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((username, password)) = basic_credentials(&headers) else {
        return unauthorized("authenticate with the add-on's partner credentials (HTTP Basic)");
    };
    let partner = match state.store.partner_addon(&username, &password).await {
        Ok(Some(addon)) => addon,
        Ok(None) => {
            tracing::warn!("partner API: credentials refused");
            return unauthorized("the partner credentials are not valid");
        }
        Err(e) => return Internal::new("partner read", e).json().into_response(),
    };
    let not_found =
        || JsonError::new(StatusCode::NOT_FOUND, "not_found", "no such app").into_response();
    if !crate::plain_id(&app_ref) {
        return not_found();
    }
    let (app, people) = match state.store.partner_app(&partner, &app_ref).await {
        Ok(PartnerApp::Collaborators { app, people }) => (app, people),
        Ok(PartnerApp::NoSuchApp) => return not_found(),
        Ok(PartnerApp::NotAttached) => {
            tracing::info!(addon_id = %partner.id, "partner API: app without this partner's add-on");
            return JsonError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this app does not have your add-on",
            )
            .into_response();
        }
        Err(e) => {
            return Internal::new("collaborators read", e)
                .json()
                .into_response();
        }
    };
    let list: Vec<serde_json::Value> = people
        .iter()
        .map(|p| {
            serde_json::json!({
                "app": { "id": app.id, "name": app.name },
                "role": p.role.as_str(),
                "user": { "id": p.account_id, "email": p.email },
                "federated": p.federated,
            })
        })
        .collect();
    tracing::info!(addon_id = %partner.id, app_id = %app.id, count = list.len(), "partner API: collaborators listed");
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(list),
    )
        .into_response()
}
