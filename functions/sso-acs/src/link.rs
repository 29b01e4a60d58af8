//! `GET/POST /sso/link/{token}`: the emailed link by which the owner of an existing account
//! (one without a password, not registered for that IdP) confirms that it comes under the
//! IdP that tried to sign it in. The GET only shows a button (mail scanners fetch links);
//! the POST consumes the single-use token and links the account. No session is started:
//! the person signs in through the IdP afterwards.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::http::{Internal, PageError, page};
use identity_shared::secret::SecretString;
use identity_shared::sso::{SsoError, SsoRecords};

use crate::web;

fn gone() -> Response {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Link expired",
        "This confirmation link has expired or was already used. Sign in through your organisation again to get a new one.",
    )
    .into_response()
}

/// `GET /sso/link/{token}`.
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
        .link_pending(&SecretString::new(token.clone()))
        .await
    {
        Ok(Some(idp)) => web::button_page(
            &state,
            &headers,
            "Move your account to single sign-on",
            &format!(
                "<p>Your organisation's identity provider <strong>{}</strong> asked to sign in \
your account. From now on the account signs in only through it. If you did not try to sign \
in, close this page: nothing changes.</p>",
                page::esc(&idp)
            ),
            &format!("/sso/link/{token}"),
            "Move to single sign-on",
        ),
        Ok(None) => gone(),
        Err(e) => Internal::new("link read", e).page().into_response(),
    }
}

/// `POST /sso/link/{token}`.
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
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
    match state.store.confirm_link(&SecretString::new(token)).await {
        Ok(Some(account)) => {
            tracing::info!(account_id = %account.id, idp = ?account.sso_idp, "account moved to SSO by its owner's emailed confirmation");
            page::html(
                StatusCode::OK,
                "Your account uses single sign-on",
                &format!(
                    "<p>The account <strong>{}</strong> now signs in through your organisation. \
<a href=\"/login\">Sign in</a>.</p>",
                    page::esc(&account.email)
                ),
            )
        }
        Ok(None) => gone(),
        Err(SsoError::OtherIdp) => web::other_idp(),
        Err(SsoError::Changed) => web::try_again(),
        Err(e) => Internal::new("confirm link", e).page().into_response(),
    }
}
