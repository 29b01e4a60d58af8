//! `GET/POST /account/welcome/{token}`: the welcome link that activates an account made at
//! a first SSO login. The GET only shows a button (mail scanners fetch links); the POST
//! consumes the single-use token and activates the account.

use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::http::{Internal, PageError, page};
use identity_shared::secret::SecretString;
use identity_shared::sso::SsoRecords;
use maud::html;

use crate::web;

fn gone() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Link expired",
        "This activation link has expired or was already used. If your account is still not active, sign in again through your organisation to get a new link.",
    )
}

/// `GET /account/welcome/{token}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    if !web::plausible_token(&token) {
        return Err(gone());
    }
    let pending = state
        .store
        .welcome_pending(&SecretString::new(token.clone()))
        .await
        .map_err(Internal::from_display("welcome read"))?;
    if !pending {
        return Err(gone());
    }
    web::button_page(
        &state,
        &headers,
        "Activate your account",
        html! { p { "Activate the account your organisation's single sign-on made for you." } },
        &format!("/account/welcome/{token}"),
        "Activate my account",
    )
    .await
}

/// `POST /account/welcome/{token}`.
pub async fn activate(
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
    let account = match state.store.activate(&SecretString::new(token)).await {
        Ok(Some(account)) => account,
        Ok(None) => return Err(gone()),
        Err(identity_shared::sso::SsoError::Changed) => return Err(web::try_again()),
        Err(e) => return Err(Internal::new("activate", e).into()),
    };
    tracing::info!(account_id = %account.id, "account activated");
    Ok(page::html(
        StatusCode::OK,
        "Your account is active",
        html! {
            p { "The account " strong { (account.email) } " is active. You can return to the application." }
        },
    ))
}
