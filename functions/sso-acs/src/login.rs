//! `GET /login` (the sign-in page) and `POST /login` (email → the organisation's IdP, or
//! email + password for accounts not under SSO).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::accounts::{Account, Accounts, Email};
use identity_shared::crypto;
use identity_shared::http::{
    Answer, Internal, SourceAddress, form, page, page_throttle_check, page_throttle_count,
};
use identity_shared::idps::Idps;
use identity_shared::secret::SecretString;
use identity_shared::throttle::{Action, Attempt};
use maud::html;
use serde::Deserialize;

use crate::web;

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

/// A throwaway Argon2id hash, verified against when the account does not exist, so an
/// unknown email costs the same time as a wrong password.
static DUMMY_HASH: std::sync::LazyLock<Option<String>> = std::sync::LazyLock::new(|| {
    crypto::hash_password(&SecretString::new("not a password of anyone")).ok()
});

/// The sign-in page. Its form's answer may lead to any registered IdP (SSO), or through a
/// password sign-in to the OAuth client that asked (`return_to`), so its `form-action`
/// names those origins and no others.
async fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    return_to: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    login_page_with(state, headers, return_to, email, error, None).await
}

/// The sign-in page, asking for a proof of work ([`work`]) when `challenge` is given.
async fn login_page_with(
    state: &AppState,
    headers: &HeaderMap,
    return_to: &str,
    email: &str,
    error: Option<&str>,
    challenge: Option<&str>,
) -> Response {
    let mut onward: Vec<String> = match state.store.idp_sso_urls().await {
        Ok(urls) => urls.iter().filter_map(|u| form::origin_of(u)).collect(),
        Err(e) => return Internal::new("idp sso urls", e).page().into_response(),
    };
    onward.extend(web::onward_origins(state, return_to).await);
    let dev_href = state.config.dev_idp.then(|| {
        let query = serde_urlencoded::to_string([("idp", "dev"), ("return_to", return_to)]);
        format!("/sso/login?{}", query.unwrap_or_default())
    });
    let token = match web::form_token(state, headers).await {
        Ok(t) => t,
        Err(e) => return e.page().into_response(),
    };
    let work = web::WorkParts::for_challenge(challenge);
    let body = html! {
        form method="post" action="/login" data-work=[work.attribute] {
            (token.hidden())
            (work.fields)
            (page::hidden("return_to", return_to))
            label for="email" { "Email" }
            input type="email" id="email" name="email" autocomplete="username" required value=(email);
            label for="password" {
                "Password " span class="muted" { "(leave empty if your organisation uses single sign-on)" }
            }
            input type="password" id="password" name="password" autocomplete="current-password";
            button type="submit" { "Continue" }
        }
        (work.script)
        p class="muted" { a href="/account/password/reset" { "Forgot your password?" } }
        @if let Some(href) = dev_href {
            p class="muted" {
                "Running locally: " a href=(href) { "sign in through the development IdP" }
                " (any email, no password)."
            }
        }
    };
    let page = page::form_page("Sign in", error, StatusCode::UNAUTHORIZED, body);
    work.response(page, token, &onward)
}

/// `GET /login`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    login_page(
        &state,
        &headers,
        &web::return_to(q.return_to.as_deref()),
        "",
        None,
    )
    .await
}

/// `POST /login`: the email's IdP (by the account or by its domain) gets the person; an
/// account not under SSO signs in with its password. Password attempts are throttled
/// ([`Action::Password`], `identity_shared::throttle`): a browser that signed in to the
/// account before is counted on its own; others per email and address prefix, where a
/// lock refuses every attempt with the same 429 page, a right password too, and unknown
/// emails alike. While failures surge, browsers not known to the account first show a
/// proof of work. A right password remembers the browser for the account.
pub async fn submit(
    State(state): State<AppState>,
    SourceAddress(address): SourceAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Answer> {
    let form = web::form_fields(&body)?;
    web::check_form(&state, &headers, &form).await?;
    let return_to = web::return_to(form.get("return_to").map(String::as_str));
    let raw_email = form.get("email").map(String::as_str).unwrap_or("");
    let Ok(email) = Email::parse(raw_email) else {
        let invalid = Some("Enter a valid email address.");
        return Ok(login_page(&state, &headers, &return_to, raw_email, invalid).await);
    };
    let password = form
        .get("password")
        .filter(|p| !p.is_empty())
        .map(|p| SecretString::new(p.clone()));
    let account = state
        .store
        .account_by_email(&email)
        .await
        .map_err(Internal::from_display("account read"))?;
    if let Some(idp) = sso_idp(&state, &email, account.as_ref(), password.is_some()).await? {
        let query = [("idp", idp.as_str()), ("return_to", &return_to)];
        let query = serde_urlencoded::to_string(query).unwrap_or_default();
        return Ok(web::see_other(&format!("/sso/login?{query}"), &[]));
    }
    let Some(password) = password else {
        let no_sso = format!(
            "{} does not sign in through single sign-on here. Enter your password, or check the email address.",
            email.domain()
        );
        return Ok(login_page(&state, &headers, &return_to, email.as_str(), Some(&no_sso)).await);
    };
    let known = web::known_browser_nonce(&state, &headers, account.as_ref()).await?;
    let who = Attempt {
        subject: Some(email.as_str()),
        address,
        device: known.as_deref(),
    };
    let prove = match page_throttle_check(&state, Action::Password, &who).await {
        Ok(prove) => prove,
        Err(locked) => {
            tracing::info!("password sign-in refused: throttled");
            return Err(locked.into());
        }
    };
    if prove && let Some(challenge) = web::work_challenge(&state, &form, raw_email).await? {
        // Nothing is checked or counted until the browser shows its work.
        tracing::info!("password sign-in: a proof of work is asked for");
        let ask =
            Some("Many sign-ins are failing right now. Enter your password again to continue.");
        let (email, challenge) = (email.as_str(), Some(challenge.as_str()));
        return Ok(login_page_with(&state, &headers, &return_to, email, ask, challenge).await);
    }
    let verified = password_matches(account.as_ref(), &password);
    match account {
        Some(account) if verified => {
            tracing::info!(account_id = %account.id, "password sign-in");
            let remember = vec![web::remember_browser(&state, &headers, &account).await?];
            let via = web::Via::Password;
            Ok(web::sign_in(&state, &account, via, &return_to, remember).await)
        }
        _ => {
            tracing::info!("password sign-in refused");
            page_throttle_count(&state, Action::Password, &who).await?;
            let (email, return_to) = (email.as_str(), return_to.as_str());
            wrong_password(&state, &headers, return_to, email, prove).await
        }
    }
}

/// The IdP that signs in `email`: the account's, or else its domain's, unless the account
/// (not under SSO) has a password and one was given. The domain's IdP is read whichever
/// applies, so the time taken does not tell what the account is.
async fn sso_idp(
    state: &AppState,
    email: &Email,
    account: Option<&Account>,
    with_password: bool,
) -> Result<Option<String>, Answer> {
    let domain_idp = state
        .store
        .idp_for_domain(email.domain())
        .await
        .map_err(Internal::from_display("idp read"))?;
    let domain_idp = domain_idp.map(|i| i.id);
    Ok(identity_shared::sso::sign_in_idp(
        account,
        domain_idp.as_deref(),
        with_password,
    ))
}

/// Whether `password` is the account's; without an account (or a password on it), a dummy
/// hash is checked all the same, so the answer takes as long.
fn password_matches(account: Option<&Account>, password: &SecretString) -> bool {
    match account.and_then(|a| a.password_hash.as_ref()) {
        Some(h) => crypto::verify_password(password, h.as_str()),
        None => {
            if let Some(dummy) = DUMMY_HASH.as_deref() {
                let _ = crypto::verify_password(password, dummy);
            }
            false
        }
    }
}

/// The sign-in page again after a wrong email or password; while failures surge, the next
/// try needs its own proof of work.
async fn wrong_password(
    state: &AppState,
    headers: &HeaderMap,
    return_to: &str,
    email: &str,
    prove: bool,
) -> Result<Response, Answer> {
    let wrong = Some("The email or password is not right.");
    let challenge = match prove {
        true => Some(web::new_work_challenge(state).await?),
        false => None,
    };
    Ok(login_page_with(
        state,
        headers,
        return_to,
        email,
        wrong,
        challenge.as_deref(),
    )
    .await)
}
