//! `GET/POST /account/impersonate/{token}`: the operator's single-use "log in as" link
//! (`identity admin user impersonate EMAIL --reason R`, five minutes). The GET shows whom
//! and why, with a field for the code the command printed beside the link (the link alone,
//! seen by a link scanner, a proxy log or a chat, signs nobody in); the POST consumes the
//! token, checks the code and starts a marked session of an hour at most, audited request
//! by request (`identity_shared::http::impersonation`). A wrong code spends the link. It works for a blocked account too: that is how
//! a departed employee's apps are handed over.

use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::accounts::{Account, Accounts};
use identity_shared::audit::{Audit, AuditEntry, ImpersonationLink, Impersonations};
use identity_shared::http::{Internal, PageError};
use identity_shared::secret::SecretString;
use identity_shared::session::{Impersonation, Sessions};
use maud::html;

use crate::web;

fn gone() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Link expired",
        "This sign-in link has expired, was already used, or was used with another code. Ask for a new one.",
    )
}

/// The account a link names (gone with it when the account is gone).
async fn account_of(state: &AppState, link: &ImpersonationLink) -> Result<Account, PageError> {
    state
        .store
        .account(&link.account_id)
        .await
        .map_err(Internal::from_display("account read"))?
        .ok_or_else(gone)
}

/// `GET /account/impersonate/{token}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    if !web::plausible_token(&token) {
        return Err(gone());
    }
    let link = state
        .store
        .impersonation_pending(&SecretString::new(token.clone()))
        .await
        .map_err(Internal::from_display("impersonation link read"))?
        .ok_or_else(gone)?;
    let account = account_of(&state, &link).await?;
    web::form_page(
        &state,
        &headers,
        "Sign in as someone else",
        html! {
            p {
                "This link signs " strong { (link.by) } " in as " strong { (account.email) }
                " for an hour at most, for: " (link.reason) "."
            }
            p {
                "Every page will say so, every action is written to the audit log, and no \
                application, device or API key can be authorized or changed in that session."
            }
        },
        html! {
            label for="code" { "The code printed with this link" }
            input type="text" id="code" name="code" autocomplete="off" autocapitalize="characters" required;
        },
        &format!("/account/impersonate/{token}"),
        &format!("Sign in as {}", account.email),
    )
    .await
}

/// `POST /account/impersonate/{token}`.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form = web::form_fields(&body)?;
    web::check_form(&state, &headers, &form).await?;
    if !web::plausible_token(&token) {
        return Err(gone());
    }
    let link = state
        .store
        .take_impersonation(
            &SecretString::new(token),
            form.get("code").map(String::as_str).unwrap_or(""),
        )
        .await
        .map_err(Internal::from_display("impersonation link"))?
        .ok_or_else(gone)?;
    let account = account_of(&state, &link).await?;
    // The audit entry first: no session without its record.
    state
        .store
        .audit(&AuditEntry {
            at: state.now(),
            by: link.by.clone(),
            account_id: account.id.to_string(),
            email: account.email.clone(),
            reason: link.reason.clone(),
            action: "impersonation started".into(),
            operator: link.operator.clone(),
        })
        .await
        .map_err(Internal::from_display("audit"))?;
    let (id, session) = state
        .store
        .start_impersonation(
            &account,
            Impersonation {
                by: link.by,
                reason: link.reason,
                operator: link.operator,
            },
        )
        .await
        .map_err(Internal::from_display("start session"))?;
    let cookie = state.session_cookie(&id, &session).await?;
    tracing::info!(account_id = %account.id, "impersonation session started");
    Ok(web::see_other("/account/authorizations", &[cookie]))
}
