//! `oauth-token`: the OAuth 2.0 endpoints a client calls directly. Routes:
//! `POST /oauth/token` (authorization_code with PKCE, rotating refresh_token,
//! client_credentials, device_code), `POST /oauth/device/authorize` (RFC 8628),
//! `POST /oauth/revoke` (RFC 7009), `POST /oauth/introspect`
//! (RFC 7662), `GET /oauth/userinfo` (the OpenID Connect UserInfo shape),
//! `GET/POST /oauth/authorizations` and `DELETE /oauth/authorizations/{id}` (API keys),
//! `/teams/{team}/…` and `/enterprises/{enterprise}/…` (an organisation administrator's API),
//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and `GET /.well-known/jwks.json`. Records and rules live in `identity_shared::oauth`; this
//! crate parses requests and answers in the protocol's own shapes.

pub mod answer;
pub mod api_keys;
pub mod client_auth;
pub mod device;
pub mod discovery;
pub mod grants;
pub mod introspection;
pub mod orgs;
mod refused;
pub mod revocation;
pub mod userinfo;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use http::HeaderMap;
use identity_shared::AppState;
use identity_shared::http::plumbing;
use identity_shared::oauth::OAuthSettings;
use identity_shared::secrets::SecretKind;

/// The keys this function fetches during Lambda init.
pub const WARM: &[SecretKind] = &[SecretKind::Signing];

/// The routes, with settings from the environment (`IDENTITY_REFRESH_GRACE_SECS`).
///
/// # Panics
/// When the environment holds an invalid setting: the process must not start with it.
/// Lambda's `main` checks the settings first and fails its init with the message instead.
pub fn routes() -> Router<AppState> {
    match OAuthSettings::from_env() {
        Ok(settings) => routes_with(settings),
        Err(e) => panic!("{e}"),
    }
}

/// The routes with explicit settings (tests, benchmarks).
pub fn routes_with(settings: OAuthSettings) -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/oauth/device/authorize", post(device_authorize))
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/introspect", post(introspect))
        .route(
            "/oauth/userinfo",
            get(|State(s): State<AppState>, headers: HeaderMap| async move {
                userinfo::userinfo(&s, &headers).await
            }),
        )
        .route(
            "/oauth/authorizations",
            get(|State(s): State<AppState>, headers: HeaderMap| async move {
                api_keys::list(&s, &headers).await
            })
            .post(
                |State(s): State<AppState>, headers: HeaderMap, body: Bytes| async move {
                    api_keys::create(&s, &headers, &body).await
                },
            ),
        )
        .route(
            "/oauth/authorizations/{id}",
            delete(
                |State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap| async move {
                    api_keys::revoke(&s, &headers, &id).await
                },
            ),
        )
        .merge(orgs::routes())
        .route(
            "/.well-known/oauth-authorization-server",
            get(|State(s): State<AppState>| async move { discovery::metadata_route(&s).await }),
        )
        .route(
            "/.well-known/jwks.json",
            get(|State(s): State<AppState>| async move { discovery::jwks_route(&s).await }),
        )
        .layer(Extension(settings))
}

/// The function's whole service, as Lambda and `identity serve` run it.
pub fn app(state: AppState) -> Router {
    plumbing::layers(routes()).with_state(state)
}

/// The service with explicit settings.
pub fn app_with(state: AppState, settings: OAuthSettings) -> Router {
    plumbing::layers(routes_with(settings)).with_state(state)
}

async fn token(
    State(state): State<AppState>,
    Extension(settings): Extension<OAuthSettings>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    grants::token(&state, &settings, &headers, &body).await
}

async fn device_authorize(
    State(state): State<AppState>,
    identity_shared::http::SourceAddress(address): identity_shared::http::SourceAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    device::authorize(&state, address, &headers, &body).await
}

async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    revocation::revoke(&state, &headers, &body).await
}

async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    introspection::introspect(&state, &headers, &body).await
}
