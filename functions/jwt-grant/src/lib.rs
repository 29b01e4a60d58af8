//! `jwt-grant`: its routes are added by the issue that builds this endpoint group; until then
//! the function answers only what the shared plumbing gives every function (404 JSON for
//! unknown routes, request ids, security headers).

use axum::Router;
use identity_shared::AppState;
use identity_shared::http::plumbing;
use identity_shared::secrets::SecretKind;

/// The keys this function fetches during Lambda init.
pub const WARM: &[SecretKind] = &[SecretKind::Signing];

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// The function's whole service, as Lambda and `identity serve` run it.
pub fn app(state: AppState) -> Router {
    plumbing::layers(routes()).with_state(state)
}
