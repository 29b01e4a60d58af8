//! The SAML routes: `GET /sso/login` (SP-initiated: an AuthnRequest over HTTP-Redirect),
//! `POST /sso/acs` (validate, provision, sign in) and `GET /sso/metadata`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::{Accounts, Email};
use identity_shared::crypto;
use identity_shared::http::{Internal, PageError, form, page};
use identity_shared::idps::Idps;
use identity_shared::outbox;
use identity_shared::secrets::CookieKeys;
use identity_shared::session::{self, SamlSubject};
use identity_shared::sso::{
    REQUEST_TTL_SECS, SamlRequest, SsoError, SsoLogin, SsoOutcome, SsoRecords,
};
use maud::html;
use serde::{Deserialize, Serialize};

use crate::saml::{self, Refusal, Sp};
use crate::{upgrade, web};

#[derive(Deserialize)]
pub struct SsoLoginQuery {
    idp: Option<String>,
    return_to: Option<String>,
}

/// The cookie holding the SP-initiated login this browser started (the AuthnRequest,
/// sealed and bound to the browser nonce below).
const REQUEST_COOKIE: &str = "identity_saml_request";
const REQUEST_AAD: &str = "saml-request";

/// The browser nonce an SP-initiated login is bound to: `__Host-identity_browser` under
/// https (Path=/ and no Domain, so no sibling host can plant one; `SameSite=None`, so the
/// IdP's cross-site post carries it), `identity_browser` with `SameSite=Lax` on plain http.
/// The request cookie (Path=/sso/acs, so only `__Secure-`) opens only with it: a request
/// cookie planted from a sibling host, or carried to another browser, finishes nothing.
const BROWSER_COOKIE: &str = "identity_browser";
/// How long a browser keeps its nonce: a year.
const BROWSER_COOKIE_SECS: i64 = 365 * 24 * 3600;

fn browser_cookie_name(state: &AppState) -> String {
    session::prefixed_name(BROWSER_COOKIE, state.config.secure_cookies(), true)
}

/// This browser's nonce, when it holds one we could have made (43 URL-safe characters).
fn browser_nonce<'a>(state: &AppState, headers: &'a HeaderMap) -> Option<&'a str> {
    session::cookie_value(headers, &browser_cookie_name(state))
        .filter(|v| form::plausible_cookie(v))
}

fn browser_cookie(state: &AppState, nonce: &str) -> String {
    format!(
        "{}={nonce}; Path=/; Max-Age={BROWSER_COOKIE_SECS}; HttpOnly{}",
        browser_cookie_name(state),
        request_cookie_attrs(state)
    )
}

/// What the request cookie is sealed with besides the key: the browser's nonce.
fn request_aad(nonce: &str) -> Vec<u8> {
    format!("{REQUEST_AAD}\n{nonce}").into_bytes()
}

/// The binding cookie's name: `__Secure-` under https (its path is `/sso/acs`, so not
/// `__Host-`): a sibling host or plain http cannot plant one.
fn request_cookie_name(state: &AppState) -> String {
    session::prefixed_name(REQUEST_COOKIE, state.config.secure_cookies(), false)
}

/// Our SAML service provider at this deployment's base URL.
pub(crate) fn sp(state: &AppState) -> Sp {
    Sp::from_base_url(&state.config.base_url)
}

/// Did the browser say this navigation started on our own pages, or from the person
/// (typed, a bookmark: `none`)? Without Fetch Metadata (an older browser, or not a browser)
/// it cannot say, and the login starts as before.
fn started_by_us_or_the_person(headers: &HeaderMap) -> bool {
    match headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => true,
        Some(site) => site == "same-origin" || site == "none",
    }
}

/// `GET /sso/login?idp=ID&return_to=PATH`. Started from another site (login CSRF: whoever
/// runs a registered IdP could otherwise sign a visitor in as themselves), it shows a page
/// that asks the person to continue, and writes nothing; from our own pages, or typed, it
/// sends the browser to the IdP.
pub async fn start(
    State(state): State<AppState>,
    Query(q): Query<SsoLoginQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let return_to = web::return_to(q.return_to.as_deref());
    let idp = match q.idp.as_deref() {
        Some(id) => state
            .store
            .idp(id)
            .await
            .map_err(Internal::from_display("idp read"))?,
        None => None,
    };
    let idp = idp.ok_or_else(|| {
        PageError::new(
            StatusCode::NOT_FOUND,
            "Unknown organisation",
            "This single sign-on link names no identity provider we know. Start again from the sign-in page.",
        )
    })?;
    if !web::idp_usable(&state, &idp) {
        return Err(refusal(Refusal::DevelopmentIdp));
    }
    if !started_by_us_or_the_person(&headers) {
        tracing::info!(idp = %idp.id, "single sign-on started from another site: asked to continue");
        return third_party_start_page(&idp, &return_to);
    }
    let keys = state
        .secrets
        .saml_sp_keys()
        .await
        .map_err(Internal::from_display("saml sp keys"))?;
    let cookie_keys = web::cookie_keys(&state).await?;
    let (request_id, url) =
        saml::authn_request_redirect(&idp, &sp(&state), &keys, &return_to, state.now())
            .map_err(Internal::from_display("authn request"))?;
    // Nothing is stored: the request waits in this browser, sealed and bound to its nonce
    // (made now for a browser that has none).
    let (nonce, new_nonce) = match browser_nonce(&state, &headers) {
        Some(n) => (n.to_string(), None),
        None => {
            let n = crypto::random_token().expose_secret().to_string();
            (n.clone(), Some(n))
        }
    };
    let request = SamlRequest {
        id: request_id,
        idp: idp.id.clone(),
        return_to,
        until: state.now() + REQUEST_TTL_SECS,
    };
    let mut response = (
        StatusCode::FOUND,
        [
            (header::LOCATION, url),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (
                header::SET_COOKIE,
                request_cookie(&state, &cookie_keys, &request, &nonce)?,
            ),
        ],
    )
        .into_response();
    if let Some(n) = new_nonce
        && let Ok(v) = browser_cookie(&state, &n).parse()
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Asks a person whom another site sent to sign in through `idp` to continue on purpose.
fn third_party_start_page(
    idp: &identity_shared::idps::Idp,
    return_to: &str,
) -> Result<Response, PageError> {
    let query = serde_urlencoded::to_string([("idp", idp.id.as_str()), ("return_to", return_to)])
        .map_err(Internal::from_display("sso login query"))?;
    Ok(page::html(
        StatusCode::OK,
        "Continue to single sign-on",
        html! {
            p {
                "Another site sent you here to sign in through " strong { (idp.id) }
                ". Continue only if you meant to sign in."
            }
            p { a href={ "/sso/login?" (query) } { "Continue to sign in" } }
            p class="muted" { a href="/login" { "Go to the sign-in page instead" } }
        },
    ))
}

/// The cookie that binds an SP-initiated login to the browser that started it: the
/// AuthnRequest's ID, sealed, sent back only to the ACS. The IdP posts the response
/// cross-site, so under https it is `SameSite=None; Secure`; on plain http (local use only,
/// where browsers refuse `SameSite=None` without `Secure`) it is `SameSite=Lax`, which
/// same-site IdPs (the development IdP, loopback IdPs) still reach.
fn request_cookie(
    state: &AppState,
    keys: &CookieKeys,
    request: &SamlRequest,
    nonce: &str,
) -> Result<String, Internal> {
    let plain = serde_json::to_vec(request).map_err(Internal::from_display("authn request"))?;
    Ok(format!(
        "{}={}; Path=/sso/acs; Max-Age={REQUEST_TTL_SECS}; HttpOnly{}",
        request_cookie_name(state),
        keys.seal(&plain, &request_aad(nonce)),
        request_cookie_attrs(state)
    ))
}

fn request_cookie_attrs(state: &AppState) -> &'static str {
    if state.config.secure_cookies() {
        "; SameSite=None; Secure"
    } else {
        "; SameSite=Lax"
    }
}

fn clear_request_cookie(state: &AppState) -> String {
    format!(
        "{}=; Path=/sso/acs; Max-Age=0; HttpOnly{}",
        request_cookie_name(state),
        request_cookie_attrs(state)
    )
}

/// The login this browser started and is waiting for, if its request cookie opens with
/// its own nonce.
fn waiting_request(
    state: &AppState,
    headers: &HeaderMap,
    keys: &CookieKeys,
) -> Option<SamlRequest> {
    let nonce = browser_nonce(state, headers)?;
    let sealed = session::cookie_value(headers, &request_cookie_name(state))?;
    let plain = keys.open(sealed, &request_aad(nonce))?;
    serde_json::from_slice(&plain).ok()
}

/// `GET /sso/metadata`.
pub async fn metadata(State(state): State<AppState>) -> Response {
    match state.secrets.saml_sp_keys().await {
        Ok(keys) => (
            [
                (header::CONTENT_TYPE, "application/samlmetadata+xml"),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            saml::sp_metadata(&sp(&state), &keys),
        )
            .into_response(),
        Err(e) => Internal::new("saml sp keys", e).json().into_response(),
    }
}

/// A refused response: a page in user terms, a log line with the reason, nothing written.
pub fn refusal(refusal: Refusal) -> PageError {
    tracing::warn!(reason = refusal.reason(), "SAML response refused");
    let status = match refusal {
        Refusal::Malformed | Refusal::Doctype | Refusal::UnsupportedEncoding => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::FORBIDDEN,
    };
    PageError::new(status, "Sign-in refused", refusal.user_message())
}

/// `POST /sso/acs`: form `SAMLResponse`, `RelayState`. Whatever the answer, the browser's
/// login-binding cookie is spent.
pub async fn acs(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let clear = clear_request_cookie(&state);
    let mut response = consume(state, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    if let Ok(v) = clear.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// SP-initiated (`in_response_to`): only the browser that started the login may finish it
/// (login CSRF: someone else's response for a request of theirs, posted from a page of
/// theirs), and the request it holds names the IdP and where to go back to.
fn bound_request(
    state: &AppState,
    headers: &HeaderMap,
    keys: &CookieKeys,
    in_response_to: Option<&str>,
    idp: &identity_shared::idps::Idp,
) -> Result<Option<SamlRequest>, PageError> {
    let Some(id) = in_response_to else {
        return Ok(None);
    };
    let waiting = waiting_request(state, headers, keys)
        .filter(|r| crypto::constant_time_eq(r.id.as_bytes(), id.as_bytes()))
        .ok_or_else(|| refusal(Refusal::OtherBrowser))?;
    if !waiting.answerable_by(&idp.id, state.now()) {
        return Err(refusal(Refusal::UnknownRequest));
    }
    Ok(Some(waiting))
}

/// Whom the IdP named, for Single Logout (an email from an attribute with no NameID names
/// nobody the IdP can log out).
fn subject_of(verified: &saml::Verified) -> Option<SamlSubject> {
    (!verified.name_id.is_empty()).then(|| SamlSubject {
        name_id: verified.name_id.clone(),
        format: verified.name_id_format.clone(),
        name_qualifier: verified.name_qualifier.clone(),
        sp_name_qualifier: verified.sp_name_qualifier.clone(),
        session_index: verified.session_index.clone(),
    })
}

/// IdP-initiated: nothing ties the response to this browser (another site can post its own
/// unsolicited response), so no session starts here: the person sees whose account this is
/// and starts it with a post from this page (the login waits sealed in a cookie).
async fn continue_page(
    state: &AppState,
    headers: &HeaderMap,
    keys: &CookieKeys,
    pending: &PendingLogin,
    email: &str,
) -> Result<Response, PageError> {
    let cookie = pending_cookie(state, keys, pending)?;
    let token = web::form_token(state, headers).await?;
    let page = page::html(
        StatusCode::OK,
        "Continue to your account",
        html! {
            p {
                "Your organisation's identity provider " strong { (pending.idp) }
                " signed you in as " strong { (email) } "."
            }
            p {
                "If this is not your account, do not continue: "
                a href="/login" { "sign in again" } " instead."
            }
            form method="post" action=(CONTINUE_PATH) {
                (token.hidden())
                button type="submit" { "Continue as " (email) }
            }
        },
    );
    let mut page = web::form_response(page, token, &[]);
    if let Ok(v) = cookie.parse() {
        page.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(page)
}

/// The registered IdP a response's issuer names, usable here (the development IdP only
/// under `identity serve`).
async fn issuer(
    state: &AppState,
    entity_id: &str,
) -> Result<identity_shared::idps::Idp, PageError> {
    let idp = state
        .store
        .idp_by_entity_id(entity_id)
        .await
        .map_err(Internal::from_display("idp read"))?
        .ok_or_else(|| refusal(Refusal::UnknownIdp))?;
    if !web::idp_usable(state, &idp) {
        return Err(refusal(Refusal::DevelopmentIdp));
    }
    Ok(idp)
}

/// A login the store refused, as the page the person sees (and the log line).
fn login_refused(e: SsoError) -> PageError {
    let reason = |why: &str| tracing::warn!(reason = why, "SAML response refused");
    match e {
        SsoError::Replayed => refusal(Refusal::Replayed),
        SsoError::UnknownRequest => refusal(Refusal::UnknownRequest),
        SsoError::OtherIdp => web::other_idp(),
        SsoError::OutsideDomains => {
            reason("email domain not the IdP's");
            PageError::new(
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                "Your identity provider signed you in with an email address outside your organisation's domains. Ask your administrator to check the SSO setup.",
            )
        }
        SsoError::NotOwner => {
            reason("IdP does not own the existing account's domain");
            web::not_owner()
        }
        SsoError::OtherPerson => {
            reason("another persistent NameID for the account's email");
            web::other_person()
        }
        SsoError::Changed => web::try_again(),
        SsoError::Store(e) => Internal::new("sso login", e).into(),
    }
}

async fn consume(state: AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, PageError> {
    let form = web::form_fields(body)?;
    let encoded = form
        .get("SAMLResponse")
        .ok_or_else(|| refusal(Refusal::Malformed))?;
    let xml = saml::decode_post(encoded).map_err(refusal)?;
    // Guarded and parsed once, for the routing and the validation below.
    let received = saml::receive(&xml).map_err(refusal)?;
    let routing = received.routing().map_err(refusal)?;
    let store = &state.store;
    let idp = issuer(&state, &routing.issuer).await?;
    let keys = web::cookie_keys(&state).await?;
    let request = bound_request(
        &state,
        headers,
        &keys,
        routing.in_response_to.as_deref(),
        &idp,
    )?;
    let verified = saml::validate_received(
        &received,
        &idp,
        &sp(&state),
        request.as_ref().map(|r| r.id.as_str()),
        state.now(),
    )
    .map_err(refusal)?;
    let email = Email::parse(&verified.email).map_err(|_| refusal(Refusal::NoEmail))?;
    let return_to = match &request {
        Some(r) => r.return_to.clone(),
        None => web::return_to(form.get("RelayState").map(String::as_str)),
    };
    let subject = subject_of(&verified);
    let welcome_base = state.config.url("/account/welcome/");
    let link_base = state.config.url("/sso/link/");
    let login = SsoLogin {
        idp: &idp,
        email: &email,
        request_id: request.as_ref().map(|r| r.id.as_str()),
        assertion_id: &verified.assertion_id,
        valid_until: verified.valid_until,
        welcome_base: &welcome_base,
        link_base: &link_base,
        return_to: &return_to,
        subject: subject.as_ref(),
    };
    let outcome = store
        .complete_sso_login(&login, &keys)
        .await
        .map_err(login_refused)?;
    let login = Completed {
        idp: &idp,
        email: &email,
        solicited: request.is_some(),
        return_to,
        subject,
    };
    answer(&state, headers, &keys, outcome, login).await
}

/// What a completed login answers with, besides its outcome.
struct Completed<'a> {
    idp: &'a identity_shared::idps::Idp,
    email: &'a Email,
    /// SP-initiated (its request bound to this browser).
    solicited: bool,
    return_to: String,
    subject: Option<SamlSubject>,
}

/// The answer to a login the store completed: a session (SP-initiated), the page that
/// continues an IdP-initiated one, the "check your email" page, or the upgrade.
async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    keys: &CookieKeys,
    outcome: SsoOutcome,
    login: Completed<'_>,
) -> Result<Response, PageError> {
    let Completed {
        idp,
        email,
        solicited,
        return_to,
        subject,
    } = login;
    let store = &state.store;
    match outcome {
        SsoOutcome::SignIn { account, created } => {
            if created {
                tracing::info!(account_id = %account.id, idp = %idp.id, "account created at first SSO login (pending)");
                outbox::deliver_newest(store, state.mail.as_ref(), email).await;
            }
            tracing::info!(account_id = %account.id, idp = %idp.id, solicited, "SSO sign-in");
            if solicited {
                let via = web::Via::Sso {
                    idp: &idp.id,
                    subject: subject.as_ref(),
                };
                return Ok(web::sign_in(state, &account, via, &return_to, vec![]).await);
            }
            let pending = PendingLogin {
                account_id: account.id.to_string(),
                idp: idp.id.clone(),
                subject,
                return_to,
                made: state.now(),
            };
            continue_page(state, headers, keys, &pending, &account.email).await
        }
        SsoOutcome::ConfirmByEmail { account, sent } => {
            tracing::info!(account_id = %account.id, idp = %idp.id, sent, "SSO link awaiting the owner's confirmation by email");
            // Past the hourly cap nothing new was written: the newest message is not sent
            // again.
            if sent {
                outbox::deliver_newest(store, state.mail.as_ref(), email).await;
            }
            Ok(page::html(
                StatusCode::OK,
                "Check your email",
                html! {
                    p {
                        "The account " strong { (account.email) } " already exists and does not \
                        sign in through " strong { (idp.id) } " yet. To make sure it is yours, we \
                        sent a link to its email address: follow it to move the account to single \
                        sign-on, then sign in again."
                    }
                },
            ))
        }
        SsoOutcome::ConfirmUpgrade { account, token } => {
            tracing::info!(account_id = %account.id, idp = %idp.id, "SSO upgrade awaiting the owner's confirmation");
            let cookie = upgrade::cookie(state, keys, &token);
            Ok(web::see_other("/sso/upgrade", &[cookie]))
        }
    }
}

/// Where an IdP-initiated login is continued.
const CONTINUE_PATH: &str = "/sso/continue";
/// The cookie that holds an IdP-initiated login until the person continues it.
const PENDING_COOKIE: &str = "identity_sso_pending";
const PENDING_AAD: &[u8] = b"sso-pending";
/// How long the person has to continue.
const PENDING_TTL_SECS: i64 = 300;

/// A verified IdP-initiated login, held (sealed, in this browser) until the person
/// continues it from our page.
#[derive(Serialize, Deserialize)]
struct PendingLogin {
    account_id: String,
    idp: String,
    subject: Option<SamlSubject>,
    return_to: String,
    made: i64,
}

fn pending_cookie_name(state: &AppState) -> String {
    session::prefixed_name(PENDING_COOKIE, state.config.secure_cookies(), false)
}

fn pending_cookie_attrs(state: &AppState) -> &'static str {
    if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    }
}

fn pending_cookie(
    state: &AppState,
    keys: &CookieKeys,
    pending: &PendingLogin,
) -> Result<String, Internal> {
    let json = serde_json::to_vec(pending).map_err(Internal::from_display("pending login"))?;
    Ok(format!(
        "{}={}; Path={CONTINUE_PATH}; Max-Age={PENDING_TTL_SECS}; HttpOnly; SameSite=Lax{}",
        pending_cookie_name(state),
        keys.seal(&json, PENDING_AAD),
        pending_cookie_attrs(state)
    ))
}

fn clear_pending_cookie(state: &AppState) -> String {
    format!(
        "{}=; Path={CONTINUE_PATH}; Max-Age=0; HttpOnly; SameSite=Lax{}",
        pending_cookie_name(state),
        pending_cookie_attrs(state)
    )
}

/// `POST /sso/continue`: the person continues the IdP-initiated login this browser holds,
/// from our own page (same-origin, or the page's form token). The session starts only now,
/// for an account still under that IdP.
pub async fn continue_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = web::form_fields(&body)?;
    web::check_form(&state, &headers, &form).await?;
    let gone = || {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Nothing to continue",
            "This sign-in has expired or was already used. Sign in again from the sign-in page.",
        )
    };
    let keys = web::cookie_keys(&state).await?;
    let now = state.now();
    let pending = session::cookie_value(&headers, &pending_cookie_name(&state))
        .and_then(|v| keys.open(v, PENDING_AAD))
        .and_then(|b| serde_json::from_slice::<PendingLogin>(&b).ok())
        .filter(|p| (0..=PENDING_TTL_SECS).contains(&(now - p.made)))
        .ok_or_else(gone)?;
    let account = state
        .store
        .account(&pending.account_id)
        .await
        .map_err(Internal::from_display("account read"))?
        .ok_or_else(gone)?;
    let idp = state
        .store
        .idp(&pending.idp)
        .await
        .map_err(Internal::from_display("idp read"))?;
    let still_under_it = idp.as_ref().is_some_and(|i| web::idp_usable(&state, i))
        && account.sso_idp.as_deref() == Some(pending.idp.as_str());
    if !still_under_it {
        tracing::info!(account_id = %account.id, "IdP-initiated login not continued: the account or IdP changed");
        return Err(gone());
    }
    tracing::info!(account_id = %account.id, idp = %pending.idp, "IdP-initiated login continued");
    let via = web::Via::Sso {
        idp: &pending.idp,
        subject: pending.subject.as_ref(),
    };
    let clear = clear_pending_cookie(&state);
    Ok(web::sign_in(&state, &account, via, &pending.return_to, vec![clear]).await)
}
