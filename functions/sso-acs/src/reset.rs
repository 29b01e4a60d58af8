//! `GET/POST /account/password/reset` (ask for a link) and
//! `GET/POST /account/password/reset/{token}` (choose a new password), for accounts not
//! under SSO.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::accounts::Email;
use identity_shared::http::{
    Answer, Internal, PageError, SourceAddress, page, page_throttle_check, page_throttle_count,
};
use identity_shared::outbox;
use identity_shared::password_reset::{MIN_PASSWORD_CHARS, PasswordResets, ResetError};
use identity_shared::secret::SecretString;
use identity_shared::throttle::{Action, Attempt, Throttling};
use maud::html;

use crate::web;

async fn ask_page(state: &AppState, headers: &HeaderMap, error: Option<&str>) -> Response {
    ask_page_with(state, headers, error, "", None).await
}

/// The page that asks for a reset link, asking for a proof of work ([`work`]) when
/// `challenge` is given.
async fn ask_page_with(
    state: &AppState,
    headers: &HeaderMap,
    error: Option<&str>,
    email: &str,
    challenge: Option<&str>,
) -> Response {
    let token = match web::form_token(state, headers).await {
        Ok(t) => t,
        Err(e) => return axum::response::IntoResponse::into_response(e.page()),
    };
    let work = web::WorkParts::for_challenge(challenge);
    let page = page::form_page(
        "Reset your password",
        error,
        StatusCode::BAD_REQUEST,
        html! {
            p {
                "Enter the email address of your account. If it has a password, we send a link \
                to choose a new one."
            }
            form method="post" action="/account/password/reset" data-work=[work.attribute] {
                (token.hidden())
                (work.fields)
                label for="email" { "Email" }
                input type="email" id="email" name="email" autocomplete="username" required value=(email);
                button type="submit" { "Send me a link" }
            }
            (work.script)
        },
    );
    work.response(page, token, &[])
}

/// `GET /account/password/reset`.
pub async fn ask(State(state): State<AppState>, headers: HeaderMap) -> Response {
    ask_page(&state, &headers, None).await
}

/// `POST /account/password/reset`: the same answer whether or not the account exists, after
/// the same store work. Every request counts against the email's and the address's limits
/// ([`Action::ResetRequest`]).
pub async fn send_link(
    State(state): State<AppState>,
    SourceAddress(address): SourceAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Answer> {
    let form = web::form_fields(&body)?;
    web::check_form(&state, &headers, &form).await?;
    let Ok(email) = Email::parse(form.get("email").map(String::as_str).unwrap_or("")) else {
        return Ok(ask_page(&state, &headers, Some("Enter a valid email address.")).await);
    };
    let who = Attempt {
        subject: Some(email.as_str()),
        address,
        device: None,
    };
    let prove = page_throttle_check(&state, Action::ResetRequest, &who).await?;
    let raw_email = form.get("email").map(String::as_str).unwrap_or("");
    if prove && let Some(challenge) = web::work_challenge(&state, &form, raw_email).await? {
        let ask =
            Some("Many reset requests are being made right now. Send yours again to continue.");
        return Ok(ask_page_with(&state, &headers, ask, email.as_str(), Some(&challenge)).await);
    }
    page_throttle_count(&state, Action::ResetRequest, &who).await?;
    let keys = web::cookie_keys(&state).await?;
    let link_base = state.config.url("/account/password/reset/");
    let sent = state
        .store
        .request_password_reset(&email, &link_base, &keys)
        .await
        .map_err(Internal::from_display("password reset"))?;
    if sent {
        outbox::deliver_newest(&state.store, state.mail.as_ref(), &email).await;
    }
    Ok(page::html(
        StatusCode::OK,
        "Check your email",
        html! {
            p {
                "If an account exists for that address, a message with what to do next is on \
                its way. The link in it works once, for an hour."
            }
        },
    ))
}

fn gone() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Link expired",
        "This password reset link has expired or was already used. Ask for a new one.",
    )
}

async fn choose_page(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    error: Option<&str>,
) -> Response {
    let form_token = match web::form_token(state, headers).await {
        Ok(t) => t,
        Err(e) => return axum::response::IntoResponse::into_response(e.page()),
    };
    let page = page::form_page(
        "Choose a new password",
        error,
        StatusCode::BAD_REQUEST,
        html! {
            form method="post" action={ "/account/password/reset/" (token) } {
                (form_token.hidden())
                label for="password" {
                    "New password "
                    span class="muted" { "(at least " (MIN_PASSWORD_CHARS) " characters)" }
                }
                input type="password" id="password" name="password" autocomplete="new-password"
                    required minlength=(MIN_PASSWORD_CHARS);
                label for="confirm" { "The same again" }
                input type="password" id="confirm" name="confirm" autocomplete="new-password" required;
                button type="submit" { "Set password" }
            }
        },
    );
    web::form_response(page, form_token, &[])
}

/// `GET /account/password/reset/{token}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, Answer> {
    if !web::plausible_token(&token) {
        return Err(gone().into());
    }
    let pending = state
        .store
        .reset_pending(&SecretString::new(token.clone()))
        .await
        .map_err(Internal::from_display("reset read"))?;
    if !pending {
        return Err(gone().into());
    }
    Ok(choose_page(&state, &headers, &token, None).await)
}

/// `POST /account/password/reset/{token}`.
pub async fn set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, Answer> {
    if !web::plausible_token(&token) {
        return Err(gone().into());
    }
    let form = web::form_fields(&body)?;
    web::check_form(&state, &headers, &form).await?;
    let password = form.get("password").cloned().unwrap_or_default();
    if form.get("confirm") != Some(&password) {
        let differ = Some("The two passwords differ.");
        return Ok(choose_page(&state, &headers, &token, differ).await);
    }
    let outcome = match state
        .store
        .reset_password(
            &SecretString::new(token.clone()),
            &SecretString::new(password),
        )
        .await
    {
        Ok(Some(account)) => {
            tracing::info!(account_id = %account.id, "password reset");
            // The owner proved the mailbox: a sign-in pause on the account ends, and its
            // strikes are forgotten, from every address and browser.
            if let Err(e) = state
                .store
                .throttle_clear(Action::Password, &state.config.limits, &account.email)
                .await
            {
                tracing::warn!(error = %e, "password reset: the sign-in pause could not be lifted");
            }
            page::html(
                StatusCode::OK,
                "Password changed",
                html! {
                    p {
                        "Your new password is set. The account is signed out everywhere, and \
                        applications you authorized with it must be authorized again. "
                        a href="/login" { "Sign in" } "."
                    }
                },
            )
        }
        Ok(None) => return Err(gone().into()),
        Err(ResetError::WeakPassword) => {
            choose_page(
                &state,
                &headers,
                &token,
                Some(&format!("Use at least {MIN_PASSWORD_CHARS} characters.")),
            )
            .await
        }
        Err(ResetError::UnderSso) => {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "No password to reset",
                "Your account signs in through your organisation's single sign-on; it has no password.",
            )
            .into());
        }
        Err(ResetError::Changed) => return Err(web::try_again().into()),
        Err(e) => return Err(Internal::new("password reset", e).into()),
    };
    Ok(outcome)
}
