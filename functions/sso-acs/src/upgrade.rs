//! `GET/POST /sso/upgrade`: an account that has a password comes under SSO only after its
//! owner confirms with that password once. Confirming revokes the account's OAuth grants
//! (and so its refresh tokens); declining leaves the account as it was, not under SSO.
//! The pending upgrade is named by a short-lived sealed cookie, never by a URL.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::accounts::{Account, Accounts};
use identity_shared::crypto;
use identity_shared::http::{
    Answer, Internal, PageError, SourceAddress, page, page_throttle_check, page_throttle_count,
};
use identity_shared::secret::SecretString;
use identity_shared::secrets::CookieKeys;
use identity_shared::session;
use identity_shared::sso::{PendingUpgrade, SsoError, SsoRecords, UPGRADE_TTL_SECS};
use identity_shared::throttle::{Action, Attempt};
use maud::html;

use crate::web;

const COOKIE: &str = "identity_sso_upgrade";
const AAD: &[u8] = b"sso-upgrade";

/// The cookie's name: `__Secure-` under https (its path is not `/`, so not `__Host-`).
fn cookie_name(state: &AppState) -> String {
    session::prefixed_name(COOKIE, state.config.secure_cookies(), false)
}

/// `Set-Cookie` carrying the pending upgrade's token, sealed.
pub fn cookie(state: &AppState, keys: &CookieKeys, token: &SecretString) -> String {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={}; Path=/sso/upgrade; Max-Age={UPGRADE_TTL_SECS}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(state),
        keys.seal(token.expose_secret().as_bytes(), AAD)
    )
}

fn clear_cookie(state: &AppState) -> String {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}=; Path=/sso/upgrade; Max-Age=0; HttpOnly; SameSite=Lax{secure}",
        cookie_name(state)
    )
}

fn expired() -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "Nothing to confirm",
        "This confirmation has expired or was already answered. Sign in again from the sign-in page.",
    )
}

/// The pending upgrade this browser holds, with its token.
async fn pending(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(SecretString, PendingUpgrade)>, Internal> {
    let Some(value) = session::cookie_value(headers, &cookie_name(state)) else {
        return Ok(None);
    };
    let keys = web::cookie_keys(state).await?;
    let Some(token) = keys
        .open(value, AAD)
        .and_then(|b| String::from_utf8(b).ok())
        .map(SecretString::new)
    else {
        return Ok(None);
    };
    let pending = state
        .store
        .pending_upgrade(&token)
        .await
        .map_err(Internal::from_display("pending upgrade read"))?;
    Ok(pending.map(|p| (token, p)))
}

async fn confirm_page(
    state: &AppState,
    headers: &HeaderMap,
    p: &PendingUpgrade,
    email: &str,
    error: Option<&str>,
) -> Response {
    let token = match web::form_token(state, headers).await {
        Ok(t) => t,
        Err(e) => return axum::response::IntoResponse::into_response(e.page()),
    };
    let page = page::form_page(
        "Move your account to single sign-on",
        error,
        StatusCode::UNAUTHORIZED,
        html! {
            p {
                "Your organisation signs you in through " strong { (p.idp) } ". Your account "
                strong { (email) } " has a password: to move it to single sign-on, enter that \
                password once."
            }
            p class="muted" {
                "After the move you sign in only through your organisation. Applications you \
                authorized with this account lose their access and must be authorized again."
            }
            form method="post" action="/sso/upgrade" {
                (token.hidden())
                label for="password" { "Password" }
                input type="password" id="password" name="password" autocomplete="current-password";
                button type="submit" name="answer" value="confirm" { "Move to single sign-on" }
                " "
                button type="submit" name="answer" value="decline" { "Not now" }
            }
        },
    );
    // Confirming signs the person in and sends them on to where they were going.
    let onward = web::onward_origins(state, &p.return_to).await;
    web::form_response(page, token, &onward)
}

/// `GET /sso/upgrade`.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Answer> {
    let (_, p) = pending(&state, &headers).await?.ok_or_else(expired)?;
    let account = state
        .store
        .account(&p.account_id)
        .await
        .map_err(Internal::from_display("account read"))?
        .ok_or_else(expired)?;
    Ok(confirm_page(&state, &headers, &p, &account.email, None).await)
}

/// The owner keeps the password: the pending move is dropped and its cookie cleared.
async fn decline(
    state: &AppState,
    token: &SecretString,
    account: &Account,
) -> Result<Response, Answer> {
    state
        .store
        .decline_upgrade(token)
        .await
        .map_err(Internal::from_display("decline upgrade"))?;
    tracing::info!(account_id = %account.id, "SSO upgrade declined");
    let mut r = page::html(
        StatusCode::OK,
        "Not moved to single sign-on",
        html! {
            p {
                "Your account stays as it is and keeps its password. "
                a href="/login" { "Sign in with your password" } "."
            }
        },
    );
    if let Ok(v) = clear_cookie(state).parse() {
        r.headers_mut().append(http::header::SET_COOKIE, v);
    }
    Ok(r)
}

/// `POST /sso/upgrade`: `answer=confirm` with `password`, or `answer=decline`. The password
/// is throttled as the sign-in page's is, under the same counters.
pub async fn answer(
    State(state): State<AppState>,
    SourceAddress(address): SourceAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Answer> {
    let form = web::form_fields(&body)?;
    web::check_form(&state, &headers, &form).await?;
    let (token, p) = pending(&state, &headers).await?.ok_or_else(expired)?;
    let store = &state.store;
    let account = store
        .account(&p.account_id)
        .await
        .map_err(Internal::from_display("account read"))?
        .ok_or_else(expired)?;
    match form.get("answer").map(String::as_str) {
        Some("decline") => decline(&state, &token, &account).await,
        Some("confirm") => {
            let known = web::known_browser_nonce(&state, &headers, Some(&account)).await?;
            let who = Attempt {
                subject: Some(&account.email),
                address,
                device: known.as_deref(),
            };
            // A surge asks nothing more here: whoever reaches this form has just been
            // vouched for by the IdP of the account's own domain, not a stranger at large.
            let _surge = page_throttle_check(&state, Action::Password, &who).await?;
            let password = SecretString::new(form.get("password").cloned().unwrap_or_default());
            let ok = account
                .password_hash
                .as_ref()
                .is_some_and(|h| crypto::verify_password(&password, h.as_str()));
            if !ok {
                tracing::info!(account_id = %account.id, "SSO upgrade: wrong password");
                page_throttle_count(&state, Action::Password, &who).await?;
                let wrong = Some("That password is not right.");
                return Ok(confirm_page(&state, &headers, &p, &account.email, wrong).await);
            }
            let linked = match store.confirm_upgrade(&token).await {
                Ok(Some(a)) => a,
                Ok(None) => return Err(expired().into()),
                Err(SsoError::OtherIdp) => return Err(web::other_idp().into()),
                Err(SsoError::NotOwner) => return Err(web::not_owner().into()),
                Err(SsoError::Changed) => return Err(web::try_again().into()),
                Err(e) => return Err(Internal::new("confirm upgrade", e).into()),
            };
            tracing::info!(account_id = %linked.id, idp = %p.idp, "account moved to SSO");
            let clear = vec![clear_cookie(&state)];
            Ok(web::sign_in(
                &state,
                &linked,
                web::Via::Sso {
                    idp: &p.idp,
                    subject: p.subject.as_ref(),
                },
                &p.return_to,
                clear,
            )
            .await)
        }
        _ => {
            let choose = Some("Choose one of the two buttons.");
            Ok(confirm_page(&state, &headers, &p, &account.email, choose).await)
        }
    }
}
