//! `jwt-grant`: the JWT bearer grant for CI (RFC 7523 §2.1) and the named authorizations
//! made through it.
//!
//! Routes:
//! - `POST /oauth/jwt/token`: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//!   `assertion=JWT`, optional `scope`; the token response or an RFC 6749 JSON error.
//! - `GET /apps/{app}/authorizations/{name_or_alias}`: a named authorization's credentials,
//!   for a bearer token whose user is the app's owner or admin ([`fetch`]).
//! - `POST /apps/{app}/authorizations`, `GET /apps/{app}/authorizations`,
//!   `DELETE /apps/{app}/authorizations/{name}`: named authorizations made from an assertion
//!   the caller signed, listed and removed ([`manage`], through [`named`]).
//!
//! [`assertion`] holds the protocol rules (no I/O, `now` given), [`grant`] runs them in
//! order against the store and writes the login history, [`sign`] makes assertions for
//! `identity admin authorization add`.

pub mod assertion;
pub mod fetch;
pub mod grant;
pub mod manage;
pub mod named;
pub mod sign;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use identity_shared::AppState;
use identity_shared::http::oauth::{OAuthError, no_store, parse_unique_form};
use identity_shared::http::{plumbing, source_address};
use identity_shared::secrets::SecretKind;

/// The keys this function fetches during Lambda init: the signing key issues the access
/// tokens, verifies the bearer tokens of the fetch route and seals stored credentials.
pub const WARM: &[SecretKind] = &[SecretKind::Signing];

/// Largest request body read by the token endpoint.
const MAX_BODY: usize = 32 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(grant::TOKEN_PATH, post(token))
        .route(
            "/apps/{app}/authorizations",
            get(manage::list).post(manage::create),
        )
        .route(
            "/apps/{app}/authorizations/{name}",
            get(fetch::fetch_authorization).delete(manage::remove),
        )
}

/// The function's whole service, as Lambda and `identity serve` run it.
pub fn app(state: AppState) -> Router {
    plumbing::layers(routes()).with_state(state)
}

fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// `POST /oauth/jwt/token`.
async fn token(State(state): State<AppState>, req: Request) -> Response {
    let origin = grant::Origin {
        source_ip: source_address(req.extensions()),
        via: grant::Via::TokenEndpoint,
        app_id: None,
    };
    let form = if is_form(&req) {
        match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
            Ok(body) => parse_unique_form(&body),
            Err(_) => Err(OAuthError::invalid_request(format!(
                "the request body is larger than {MAX_BODY} bytes"
            ))),
        }
    } else {
        Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    };
    match grant::exchange(&state, form, &origin).await {
        Ok(granted) => (StatusCode::OK, no_store(), Json(granted.response_json())).into_response(),
        Err(e) => e.into_response(),
    }
}
