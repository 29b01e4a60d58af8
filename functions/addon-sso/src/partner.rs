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
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use identity_shared::AppState;
use identity_shared::addons::{Addons, PartnerApp};
use identity_shared::http::{Internal, JsonError};
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
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, encoded) = value.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = SecretString::new(String::from_utf8(decoded).ok()?);
    let (user, password) = decoded.expose_secret().split_once(':')?;
    Some((user.to_string(), SecretString::new(password)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_credentials_are_read_strictly() {
        let (u, p) =
            basic_credentials(&headers(&[&format!("Basic {}", b64("addon-x:pa:ss"))])).unwrap();
        assert_eq!(u, "addon-x");
        assert_eq!(p.expose_secret(), "pa:ss", "the password may hold colons");
        let (u, _) =
            basic_credentials(&headers(&[&format!("basic {}", b64("addon-x:pw"))])).unwrap();
        assert_eq!(u, "addon-x");
        assert!(basic_credentials(&headers(&[])).is_none());
        assert!(basic_credentials(&headers(&["Bearer abc"])).is_none());
        assert!(basic_credentials(&headers(&["Basic !!!"])).is_none());
        assert!(basic_credentials(&headers(&[&format!("Basic {}", b64("no-colon"))])).is_none());
        let one = format!("Basic {}", b64("a:b"));
        assert!(basic_credentials(&headers(&[&one, &one])).is_none());
    }
}
