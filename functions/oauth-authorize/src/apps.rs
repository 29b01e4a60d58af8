//! `GET /account/apps` and `POST /apps/{app}/transfer`: the signed-in person's apps, and
//! handing one they own to someone else (the seeds' offboarding: "the admin can log in as
//! the user and transfer the apps" — it works from a "log in as" session, audited there).
//! The new owner must have an account; the previous owner stays on the app as an admin.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::accounts::{Accounts, Email};
use identity_shared::apps::{AppError, Apps, Role};
use identity_shared::http::page::{self, hidden};
use identity_shared::http::{Answer, Internal, PageError, SignedIn, fields, form};
use maud::html;

use crate::request::parse_pairs;

/// The CSRF token of the apps page's forms.
fn apps_csrf(session: &identity_shared::session::SessionId) -> String {
    session.derive("account-apps")
}

/// `GET /account/apps`.
pub async fn list(State(state): State<AppState>, user: SignedIn) -> Result<Response, Answer> {
    let held = state
        .store
        .apps_of(&user.account.id)
        .await
        .map_err(Internal::from_display("apps read"))?;
    let csrf = apps_csrf(&user.id);
    let mut apps = Vec::new();
    for (app_id, role) in held {
        let app = state
            .store
            .app(&app_id)
            .await
            .map_err(Internal::from_display("app read"))?;
        apps.extend(app.map(|app| (app, role)));
    }
    let body = html! {
        p {
            "Signed in as " strong { (user.account.email) } ". Transferring an app makes \
            someone else its owner; you stay on it as an admin until they remove you."
        }
        @if apps.is_empty() {
            p { "You have no apps." }
        } @else {
            ul {
                @for (app, role) in &apps {
                    li {
                        h2 { (app.name) }
                        p class="muted" { "Your role: " (role.as_str()) }
                        @if *role == Role::Owner {
                            @let field = format!("owner-{}", app.id);
                            form method="post" action={ "/apps/" (app.id) "/transfer" } {
                                (hidden("csrf", &csrf))
                                label for=(field) { "New owner's email" }
                                input type="email" id=(field) name="new_owner" required autocomplete="off";
                                button type="submit" { "Transfer " (app.name) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::html(StatusCode::OK, "Your apps", body))
}

/// `POST /apps/{app}/transfer`: `new_owner` (an email) and `csrf`.
pub async fn transfer(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Answer> {
    let pairs = parse_pairs(&body)?;
    let user = state.signed_in(&headers).await?.ok_or_else(|| {
        PageError::new(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your session has ended. Sign in again.",
        )
    })?;
    let token_ok = fields::value(&pairs, "csrf").is_some_and(|p| {
        identity_shared::crypto::constant_time_eq(p.as_bytes(), apps_csrf(&user.id).as_bytes())
    });
    if let Err(refused) = form::check_session_post(&headers, &state.config.origin(), token_ok) {
        tracing::warn!("app transfer refused: another site, or no valid CSRF token");
        return Err(refused.into());
    }
    let not_yours = || PageError::new(StatusCode::NOT_FOUND, "Not found", "You own no such app.");
    let app = state
        .store
        .app(&app_id)
        .await
        .map_err(Internal::from_display("app read"))?
        .ok_or_else(not_yours)?;
    if app.owner_account_id != user.account.id {
        return Err(not_yours().into());
    }
    let no_account = || {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "No such account",
            "The new owner needs an account here. Check the email and try again.",
        )
    };
    let email = fields::value(&pairs, "new_owner")
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(no_account)?;
    let new_owner = state
        .store
        .account_by_email(&email)
        .await
        .map_err(Internal::from_display("account read"))?
        .filter(|a| !a.is_blocked())
        .ok_or_else(no_account)?;
    match state.store.set_role(&app, &new_owner, Role::Owner).await {
        Ok(()) => {}
        Err(AppError::NotFound) => return Err(not_yours().into()),
        Err(e) => return Err(Internal::new("app transfer", e).into()),
    }
    tracing::info!(app_id = %app.id, "app transferred by its owner");
    Ok(page::html(
        StatusCode::OK,
        "App transferred",
        html! {
            p {
                strong { (app.name) } " now belongs to " strong { (new_owner.email) }
                ". You stay on it as an admin until they remove you."
            }
            p { a href="/account/apps" { "Your apps" } }
        },
    ))
}
