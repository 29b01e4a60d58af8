//! `GET/POST /account/welcome/{token}`: the welcome link that activates an account made at
//! a first SSO login. The GET only shows a button (mail scanners fetch links); the POST
//! consumes the single-use token and activates the account.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::http::{Internal, PageError, page};
use identity_shared::secret::SecretString;
use identity_shared::sso::SsoRecords;

use crate::web;

fn gone() -> Response {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Link expired",
        "This activation link has expired or was already used. If your account is still not active, sign in again through your organisation to get a new link.",
    )
    .into_response()
}

/// `GET /account/welcome/{token}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if !web::plausible_token(&token) {
        return gone();
    }
    match state
        .store
        .welcome_pending(&SecretString::new(token.clone()))
        .await
    {
        Ok(true) => web::button_page(
            &state,
            &headers,
            "Activate your account",
            "<p>Activate the account your organisation's single sign-on made for you.</p>",
            &format!("/account/welcome/{token}"),
            "Activate my account",
        ),
        Ok(false) => gone(),
        Err(e) => Internal::new("welcome read", e).page().into_response(),
    }
}

/// `POST /account/welcome/{token}`.
pub async fn activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = match web::form_fields(&body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = web::check_form(&state, &headers, &form) {
        return r.into_response();
    }
    if !web::plausible_token(&token) {
        return gone();
    }
    match state.store.activate(&SecretString::new(token)).await {
        Ok(Some(account)) => {
            tracing::info!(account_id = %account.id, "account activated");
            page::html(
                StatusCode::OK,
                "Your account is active",
                &format!(
                    "<p>The account <strong>{}</strong> is active. You can return to the application.</p>",
                    page::esc(&account.email)
                ),
            )
        }
        Ok(None) => gone(),
        Err(identity_shared::sso::SsoError::Changed) => web::try_again(),
        Err(e) => Internal::new("activate", e).page().into_response(),
    }
}
