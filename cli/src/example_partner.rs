//! An example add-on partner, in `identity serve` only (never in a Lambda): the other end
//! of add-on SSO, so the whole path can be tried in a browser locally.
//!
//! `GET /example-partner` says how to try it; `POST /example-partner/sso` is an add-on's
//! `sso_url`: it reads the form, finds the resource by `resource_id` (a real partner looks
//! in its own database; this one reads the add-on record, which holds the same salt), runs
//! the partner-side verifier (`identity_shared::addon_sso::verify`, consuming the request
//! once in the store's `once` table) and shows who signed in. It keeps nothing: a real
//! partner would now start its own session for the resource's shadow user.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use identity_shared::AppState;
use identity_shared::addon_sso::{self, VerifyError};
use identity_shared::addons::Addons;
use identity_shared::http::page;
use identity_shared::http::{Internal, PageError};
use maud::html;

pub const PAGE_PATH: &str = "/example-partner";
pub const SSO_PATH: &str = "/example-partner/sso";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PAGE_PATH, get(how_to))
        .route(SSO_PATH, post(sso))
}

async fn how_to(State(state): State<AppState>) -> Response {
    let sso_url = state.config.url(SSO_PATH);
    let body = html! {
        p {
            "This is an example add-on partner, served by " code { "identity serve" } " only. \
            It receives add-on SSO requests and verifies them with the partner-side verifier."
        }
        ol {
            li { code { "identity admin user add --email you@example.com --password-stdin" } }
            li { code { "identity admin app add --name my-app --owner you@example.com" } }
            li { code { "identity admin addon add --app my-app --name my-addon --sso-url " (sso_url) } }
            li {
                "Sign in, then open " code { "/addons/<addon_id>/sso" } ": the platform checks \
                your role on " code { "my-app" } " and sends you here."
            }
        }
    };
    page::html(StatusCode::OK, "Example add-on partner", body)
}

fn refused(message: &str) -> Response {
    PageError::new(StatusCode::FORBIDDEN, "Sign-in refused", message).into_response()
}

async fn sso(State(state): State<AppState>, body: Bytes) -> Response {
    let form = match addon_sso::form_from_urlencoded(&body) {
        Ok(f) => f,
        Err(e) => return refused(&e.to_string()),
    };
    let addon = match state.store.addon_by_resource(form.resource_id()).await {
        Ok(Some(a)) => a,
        Ok(None) => return refused("This partner has no such resource."),
        Err(e) => return Internal::new("resource read", e).page().into_response(),
    };
    let who = match addon_sso::verify(&state.store, &addon.sso_salt(), &form, state.now()).await {
        Ok(claims) => claims,
        Err(VerifyError::Store(e)) => {
            return Internal::new("replay record", e).page().into_response();
        }
        Err(e) => {
            tracing::info!(reason = %e, "example partner: SSO request refused");
            return refused(&e.to_string());
        }
    };
    tracing::info!(resource_id = %who.resource_id, "example partner: SSO request verified");
    let rows = [
        ("email", who.email.clone()),
        ("user_id", who.user_id.clone()),
        ("app", who.app.clone()),
        ("context_app", who.context_app.clone()),
        ("resource_id", who.resource_id.clone()),
        ("timestamp", who.timestamp.to_string()),
    ];
    let body = html! {
        p {
            "Signed in to the dashboard of " strong { (addon.name) } " as " strong { (who.email) } "."
        }
        table {
            @for (k, v) in &rows { tr { th { (k) } td { (v) } } }
        }
        p class="muted" {
            "The dashboard belongs to the resource's shadow user, not to you: access comes only \
            from this SSO request (checked: tokens, five-minute window, used once). Reload or \
            resubmit and it is refused."
        }
    };
    page::html(StatusCode::OK, "Example add-on partner", body)
}
