//! "Log in as" (offboarding): what an impersonation session may do, and what it leaves
//! behind. Every request of such a session is written to the audit log before it runs
//! (`audit`), and every page it gets carries a banner naming who signed in as whom; an
//! audit that cannot be written refuses the request. Handlers refuse what would mint
//! credentials or change API keys ([`refuse_if_impersonating`]).

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use super::{AppState, Internal, PageError, SignedIn};
use crate::audit::{Audit, AuditEntry};

/// Largest page the banner is put into.
const MAX_PAGE: usize = 2 * 1024 * 1024;

/// A function's whole service: its routes with the common layers and the impersonation
/// guard, on `state`. Every function's `app` and `identity serve` build through this.
pub fn service(routes: Router<AppState>, state: AppState) -> Router {
    super::plumbing::layers(
        routes.route_layer(axum::middleware::from_fn_with_state(state.clone(), guard)),
    )
    .with_state(state)
}

/// The refusal of an action an impersonation session may not take.
pub fn refuse_if_impersonating(user: &SignedIn, what: &str) -> Result<(), PageError> {
    match &user.session.impersonation {
        None => Ok(()),
        Some(i) => {
            tracing::warn!(by = %i.by, "refused in an impersonation session");
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                "Not while signed in as someone else",
                format!(
                    "You are signed in as {} by {}. {what} is not possible in such a session.",
                    user.account.email, i.by
                ),
            ))
        }
    }
}

async fn guard(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    // A request that cannot be matched to a session goes on; the handler decides.
    let Ok(Some(user)) = state.signed_in(request.headers()).await else {
        return next.run(request).await;
    };
    let Some(imp) = user.session.impersonation.clone() else {
        return next.run(request).await;
    };
    let action = format!(
        "{} {}",
        request.method(),
        matched
            .as_ref()
            .map(MatchedPath::as_str)
            .unwrap_or("(unrouted)")
    );
    let entry = AuditEntry {
        at: state.now(),
        by: imp.by.clone(),
        account_id: user.account.id.to_string(),
        email: user.account.email.clone(),
        reason: imp.reason.clone(),
        action,
        operator: imp.operator.clone(),
    };
    if let Err(e) = state.store.audit(&entry).await {
        return Internal::new("audit", e).json().into_response();
    }
    let response = next.run(request).await;
    with_banner(response, &user, &imp.by, user.session.expires_at).await
}

/// Puts the banner into an HTML page (at the top of its `header`).
async fn with_banner(response: Response, user: &SignedIn, by: &str, ends: i64) -> Response {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE).await else {
        return Internal::new("page", "too large for the banner")
            .json()
            .into_response();
    };
    let page = String::from_utf8_lossy(&bytes);
    let banner = maud::html! {
        p class="impersonation" role="status" {
            strong { "Signed in as " (user.account.email) " by admin " (by) }
            ": every action is audited; this session ends at "
            (crate::clock::rfc3339(ends)) "."
        }
    };
    let banner = ["<header>", &banner.into_string()].concat();
    let page = page.replacen("<header>", &banner, 1);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(page))
}
