//! `GET/POST /sso/link/{token}`: the emailed link by which the owner of an existing account
//! (one without a password, not registered for that IdP) confirms that it comes under the
//! IdP that tried to sign it in. The GET only shows a button (mail scanners fetch links);
//! the POST consumes the single-use token and links the account. No session is started:
//! the person signs in through the IdP afterwards.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::http::{Internal, PageError, page};
use identity_shared::secret::SecretString;
use identity_shared::sso::{SsoError, SsoRecords};
use maud::html;

use crate::web;

fn gone() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Link expired",
        "This confirmation link has expired or was already used. Sign in through your organisation again to get a new one.",
    )
}

/// `GET /sso/link/{token}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    if !web::plausible_token(&token) {
        return Err(gone());
    }
    let idp = state
        .store
        .link_pending(&SecretString::new(token.clone()))
        .await
        .map_err(Internal::from_display("link read"))?
        .ok_or_else(gone)?;
    web::button_page(
        &state,
        &headers,
        "Move your account to single sign-on",
        html! {
            p {
                "Your organisation's identity provider " strong { (idp) } " asked to sign in \
                your account. From now on the account signs in only through it. If you did not \
                try to sign in, close this page: nothing changes."
            }
        },
        &format!("/sso/link/{token}"),
        "Move to single sign-on",
    )
    .await
}

/// `POST /sso/link/{token}`.
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = web::form_fields(&body)?;
    web::check_form(&state, &headers, &form).await?;
    if !web::plausible_token(&token) {
        return Err(gone());
    }
    let account = match state.store.confirm_link(&SecretString::new(token)).await {
        Ok(Some(account)) => account,
        Ok(None) => return Err(gone()),
        Err(SsoError::OtherIdp) => return Err(web::other_idp()),
        Err(SsoError::NotOwner) => return Err(web::not_owner()),
        Err(SsoError::Changed) => return Err(web::try_again()),
        Err(e) => return Err(Internal::new("confirm link", e).into()),
    };
    tracing::info!(account_id = %account.id, idp = ?account.sso_idp, "account moved to SSO by its owner's emailed confirmation");
    Ok(page::html(
        StatusCode::OK,
        "Your account uses single sign-on",
        html! {
            p {
                "The account " strong { (account.email) } " now signs in through your \
                organisation. " a href="/login" { "Sign in" } "."
            }
        },
    ))
}
