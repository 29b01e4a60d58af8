//! `addon-sso`: add-on SSO under the ownership model, and the Platform API for partners.
//!
//! - `GET /addons/{addon_id}/sso` (`sso.rs`): a signed-in person with a role on the add-on's
//!   app (read from the store now) gets a page that auto-POSTs the SSO form to the add-on's
//!   `sso_url`; anyone else a 403 page.
//! - `GET /partner/apps/{app_id}/collaborators` (`partner.rs`): HTTP Basic with an add-on's
//!   partner credentials; the app's owner, team members and collaborators with their roles.
//!
//! Records and rules live in `identity_shared::addons` and `identity_shared::addon_sso`
//! (which also holds the partner-side verifier).

pub mod partner;
pub mod sso;

use axum::Router;
use axum::routing::get;
use identity_shared::AppState;
use identity_shared::secrets::SecretKind;

/// The keys this function fetches during Lambda init.
pub const WARM: &[SecretKind] = &[SecretKind::Cookie];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/addons/{addon_id}/sso", get(sso::sso))
        .route(
            "/partner/apps/{app_id}/collaborators",
            get(partner::collaborators),
        )
}

/// The function's whole service, as Lambda and `identity serve` run it.
pub fn app(state: AppState) -> Router {
    identity_shared::http::impersonation::service(routes(), state)
}

/// Ids in paths are UUIDs or app names: short, plain characters. Anything else is no such
/// thing, without a store read.
pub(crate) fn plain_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}
