//! `GET /account/apps` and `POST /apps/{app}/transfer`: the signed-in person's apps, and
//! handing one they own to someone else (the seeds' offboarding: "the admin can log in as
//! the user and transfer the apps" — it works from a "log in as" session, audited there).
//! The new owner must have an account; the previous owner stays on the app as an admin.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, Uri};
use identity_shared::AppState;
use identity_shared::accounts::{Accounts, Email};
use identity_shared::apps::{AppError, Apps, Role};
use identity_shared::http::page::{self, esc, hidden};
use identity_shared::http::{Answer, Internal, PageError, fields, form};

use crate::request::parse_pairs;

/// The CSRF token of the apps page's forms.
fn apps_csrf(session: &identity_shared::session::SessionId) -> String {
    session.derive("account-apps")
}

/// `GET /account/apps`.
pub async fn list(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Answer> {
    let user = state
        .signed_in(&headers)
        .await?
        .ok_or_else(|| page::login_redirect(&uri))?;
    let held = state
        .store
        .apps_of(&user.account.id)
        .await
        .map_err(Internal::from_display("apps read"))?;
    let csrf = apps_csrf(&user.id);
    let mut items = String::new();
    for (app_id, role) in held {
        let Some(app) = state
            .store
            .app(&app_id)
            .await
            .map_err(Internal::from_display("app read"))?
        else {
            continue;
        };
        let transfer = if role == Role::Owner {
            let field = format!("owner-{}", app.id);
            format!(
                "<form method=\"post\" action=\"/apps/{id}/transfer\">{csrf}\
<label for=\"{field}\">New owner's email</label>\
<input type=\"email\" id=\"{field}\" name=\"new_owner\" required autocomplete=\"off\">\
<button type=\"submit\">Transfer {name}</button></form>",
                id = esc(&app.id),
                csrf = hidden("csrf", &csrf),
                name = esc(&app.name),
            )
        } else {
            String::new()
        };
        items.push_str(&format!(
            "<li><h2>{}</h2><p class=\"muted\">Your role: {}</p>{transfer}</li>",
            esc(&app.name),
            role.as_str()
        ));
    }
    let list = if items.is_empty() {
        "<p>You have no apps.</p>".to_string()
    } else {
        format!("<ul>{items}</ul>")
    };
    Ok(page::html(
        StatusCode::OK,
        "Your apps",
        &format!(
            "<p>Signed in as <strong>{}</strong>. Transferring an app makes someone else its \
owner; you stay on it as an admin until they remove you.</p>{list}",
            esc(&user.account.email)
        ),
    ))
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
        &format!(
            "<p><strong>{}</strong> now belongs to <strong>{}</strong>. You stay on it as an \
admin until they remove you.</p><p><a href=\"/account/apps\">Your apps</a></p>",
            esc(&app.name),
            esc(&new_owner.email)
        ),
    ))
}
