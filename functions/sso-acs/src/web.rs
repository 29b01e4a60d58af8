//! Small pieces every page of this function uses: the return path, the same-origin check
//! for form posts, redirects that set a cookie, and signing a person in.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::Account;
use identity_shared::http::form::{self, FormToken};
use identity_shared::http::{Internal, PageError, known_browser, page, work};
use identity_shared::idps::Idp;
use identity_shared::oauth::OAuthClients;
use identity_shared::session::{SamlSubject, Sessions};
use maud::{Markup, html};
use std::collections::HashMap;

/// Where a person lands when nothing else was asked for.
pub const DEFAULT_RETURN: &str = "/account/authorizations";

/// The pages a person may be sent back to after sign-in: paths this service routes.
const RETURN_PATHS: &[&str] = &[
    "/account/",
    "/oauth/authorize",
    "/device",
    "/addons/",
    "/session",
    "/example-partner",
];

/// A same-origin path to go to after sign-in: a path this service routes (above), with no
/// `//`, no backslash, no control character and no percent-encoded slash or backslash in
/// its path part (`/%2F%2Fhost`, `/%5Chost`). Anything else becomes the default.
pub fn return_to(raw: Option<&str>) -> String {
    let ok = |p: &str| {
        let path = p.split('?').next().unwrap_or("");
        let lower = path.to_ascii_lowercase();
        p.len() <= 2048
            && path.starts_with('/')
            && !path.contains("//")
            && !p.contains('\\')
            && !lower.contains("%2f")
            && !lower.contains("%5c")
            && !p.chars().any(|c| c.is_control())
            && RETURN_PATHS.iter().any(|r| {
                if r.ends_with('/') {
                    path.starts_with(r) && path.len() > r.len()
                } else {
                    path == *r || path.starts_with(&format!("{r}/"))
                }
            })
    };
    match raw {
        Some(p) if ok(p) => p.to_string(),
        _ => DEFAULT_RETURN.to_string(),
    }
}

/// A post from one of this function's forms (shown before sign-in): same-origin by the
/// browser's Fetch Metadata, or carrying the token bound to this browser (`http::form`).
pub async fn check_form(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), PageError> {
    let keys = cookie_keys(state).await?;
    form::check_anonymous_post(
        headers,
        &state.config.origin(),
        form.get(form::FIELD).map(String::as_str),
        &keys,
    )
    .inspect_err(|_| tracing::warn!("form post refused: not from this site, no valid form token"))
}

/// The keys that seal this service's cookies; not to be had is a 503.
pub async fn cookie_keys(
    state: &AppState,
) -> Result<std::sync::Arc<identity_shared::secrets::CookieKeys>, Internal> {
    state
        .secrets
        .cookie_keys()
        .await
        .map_err(Internal::from_display("cookie keys"))
}

/// The token for a form on a page being shown to this browser: the server's tag of its
/// form cookie (so the keys are needed; without them, a 503).
pub async fn form_token(state: &AppState, headers: &HeaderMap) -> Result<FormToken, Internal> {
    let keys = cookie_keys(state).await?;
    Ok(FormToken::for_page(
        headers,
        state.config.secure_cookies(),
        &keys,
    ))
}

/// The device cookie's nonce this browser holds for `account`, when it signed in to it
/// before with its password ([`known_browser`]).
pub async fn known_browser_nonce(
    state: &AppState,
    headers: &HeaderMap,
    account: Option<&Account>,
) -> Result<Option<String>, Internal> {
    let Some(account) = account else {
        return Ok(None);
    };
    let keys = cookie_keys(state).await?;
    Ok(known_browser::nonce_for(
        &keys,
        headers,
        state.config.secure_cookies(),
        &account.id,
    ))
}

/// The `Set-Cookie` that remembers `account` in this browser ([`known_browser`]).
pub async fn remember_browser(
    state: &AppState,
    headers: &HeaderMap,
    account: &Account,
) -> Result<String, Internal> {
    let keys = cookie_keys(state).await?;
    Ok(known_browser::remember(
        &keys,
        headers,
        state.config.secure_cookies(),
        &account.id,
    ))
}

/// A proof of work, when the throttle asks for one ([`work`]): `Ok(None)` when the form
/// carries a good one for `subject`, otherwise the challenge to put on the page.
pub async fn work_challenge(
    state: &AppState,
    form: &HashMap<String, String>,
    subject: &str,
) -> Result<Option<String>, Internal> {
    let keys = cookie_keys(state).await?;
    let now = state.now();
    let done = work::proven(
        &keys,
        now,
        form.get(work::CHALLENGE_FIELD).map(String::as_str),
        form.get(work::NONCE_FIELD).map(String::as_str),
        subject,
    );
    Ok((!done).then(|| work::challenge(&keys, now)))
}

/// A new proof-of-work challenge ([`work`]).
pub async fn new_work_challenge(state: &AppState) -> Result<String, Internal> {
    let keys = cookie_keys(state).await?;
    Ok(work::challenge(&keys, state.now()))
}

/// What a form that asks for a proof of work ([`work`]) adds, or nothing: the form tag's
/// `data-work` attribute, the hidden fields, the script after the form.
#[derive(Default)]
pub struct WorkParts {
    pub attribute: Option<u32>,
    pub fields: Markup,
    pub script: Markup,
}

impl WorkParts {
    pub fn for_challenge(challenge: Option<&str>) -> Self {
        match challenge {
            Some(c) => Self {
                attribute: Some(work::form_attribute()),
                fields: work::fields(c),
                script: work::script_element(),
            },
            None => Self::default(),
        }
    }

    /// [`form_response`], and when the form asks for work its policy allows the script.
    pub fn response(&self, page: Response, token: FormToken, onward: &[String]) -> Response {
        let mut page = form_response(page, token, onward);
        if self.attribute.is_some()
            && let Some(policy) = page.headers().get(header::CONTENT_SECURITY_POLICY)
        {
            let allowed = work::allow_script(policy);
            page.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, allowed);
        }
        page
    }
}

/// Where a form's answer may redirect the browser after sign-in, beyond this origin: the
/// OAuth client's registered redirect URI when `return_to` is an authorization request
/// (a trusted client is answered with a redirect to it straight away).
pub async fn onward_origins(state: &AppState, return_to: &str) -> Vec<String> {
    let Some(query) = return_to.strip_prefix("/oauth/authorize?") else {
        return vec![];
    };
    let pairs = identity_shared::http::fields::read_pairs(query.as_bytes()).unwrap_or_default();
    let get = |name: &str| identity_shared::http::fields::value(&pairs, name);
    let (Some(client_id), Some(redirect_uri)) = (get("client_id"), get("redirect_uri")) else {
        return vec![];
    };
    match state.store.client(client_id).await {
        Ok(Some(c)) if c.has_redirect_uri(redirect_uri) => {
            form::origin_of(redirect_uri).into_iter().collect()
        }
        _ => vec![],
    }
}

/// A page with a form whose answer may lead to `onward` origins: its policy allows them in
/// `form-action`, and the form cookie is set when the browser has none.
pub fn form_response(mut page: Response, token: FormToken, onward: &[String]) -> Response {
    page.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        form::csp_with_form_action(onward.iter().map(String::as_str)),
    );
    token.apply(page)
}

/// The page behind an emailed single-use link (welcome, SSO link): `intro_html`, then one
/// button that posts back to `action`. The GET itself changes nothing, since mail scanners
/// fetch links.
pub async fn button_page(
    state: &AppState,
    headers: &HeaderMap,
    title: &str,
    intro: Markup,
    action: &str,
    button: &str,
) -> Result<Response, PageError> {
    form_page(state, headers, title, intro, html! {}, action, button).await
}

/// [`button_page`] with `inputs` before the button.
pub async fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    title: &str,
    intro: Markup,
    inputs: Markup,
    action: &str,
    button: &str,
) -> Result<Response, PageError> {
    let token = form_token(state, headers).await?;
    let body = html! {
        (intro)
        form method="post" action=(action) {
            (token.hidden())
            (inputs)
            button type="submit" { (button) }
        }
    };
    let page = page::html(StatusCode::OK, title, body);
    Ok(form_response(page, token, &[]))
}

/// A single-use link's token as it could have come from us (welcome, reset, SSO link):
/// checked before any store read.
pub fn plausible_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= 128 && token.bytes().all(|b| b.is_ascii_graphic())
}

/// `303` to `location`, setting the given cookies.
pub fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response();
    for c in cookies {
        if let Ok(v) = c.parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// How a person signed in.
#[derive(Debug, Clone, Copy)]
pub enum Via<'a> {
    Password,
    /// Through IdP `idp`; `subject` is what its assertion named, for Single Logout (None
    /// when the login did not come straight from an assertion).
    Sso {
        idp: &'a str,
        subject: Option<&'a SamlSubject>,
    },
}

/// Starts a session (8 hours from now whatever the activity): the cookie that carries it,
/// or the error page (a blocked account gets none).
pub async fn session_cookie(
    state: &AppState,
    account: &Account,
    via: Via<'_>,
) -> Result<String, PageError> {
    if account.is_blocked() {
        tracing::info!(account_id = %account.id, "sign-in refused: the account is blocked");
        let why = match account.blocked_by.as_deref() {
            Some(org) => format!(
                "Your organisation ({org}) has blocked access to this account. Ask its \
                 administrators to unblock it."
            ),
            None => "This account is blocked. Ask your administrator to unblock it.".to_string(),
        };
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Account blocked",
            why,
        ));
    }
    let lifetime = state.config.session_lifetime_secs;
    let started = match via {
        Via::Password => state.store.start_session(account, None, lifetime).await,
        Via::Sso { idp, subject: None } => {
            state
                .store
                .start_session(account, Some(idp), lifetime)
                .await
        }
        Via::Sso {
            idp,
            subject: Some(subject),
        } => {
            state
                .store
                .start_saml_session(account, idp, subject, lifetime)
                .await
        }
    };
    let (id, session) = started.map_err(Internal::from_display("start session"))?;
    Ok(state.session_cookie(&id, &session).await?)
}

/// Starts a session and sends the person on. `extra_cookies` are set alongside (e.g.
/// clearing the upgrade cookie).
pub async fn sign_in(
    state: &AppState,
    account: &Account,
    via: Via<'_>,
    return_to: &str,
    extra_cookies: Vec<String>,
) -> Response {
    match session_cookie(state, account, via).await {
        Ok(cookie) => {
            let mut cookies = vec![cookie];
            cookies.extend(extra_cookies);
            see_other(return_to, &cookies)
        }
        Err(page) => page.into_response(),
    }
}

/// Is this IdP usable here? The development IdP (and any IdP marked development) only
/// under `identity serve`, never in a deployment.
pub fn idp_usable(state: &AppState, idp: &Idp) -> bool {
    state.config.dev_idp || !(idp.development || idp.id == "dev")
}

/// A form body as fields; a repeated field or an unreadable body is refused.
pub fn form_fields(body: &[u8]) -> Result<HashMap<String, String>, PageError> {
    let bad = || {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The form could not be read. Go back and try again.",
        )
    };
    identity_shared::http::fields::read_unique(body).map_err(|_| bad())
}

/// The account is under another IdP than the one that answered.
pub fn other_idp() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Sign-in refused",
        "Your account is under another organisation's single sign-on. Sign in through that organisation instead.",
    )
}

/// The IdP does not own the account's email domain (any more): it cannot sign it in.
pub fn not_owner() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Sign-in refused",
        "This identity provider cannot sign in an existing account outside its organisation's email domains.",
    )
}

/// The IdP named another person than the one the account was first signed in as.
pub fn other_person() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Sign-in refused",
        "Your identity provider signed you in as a different person than the one this account belongs to. Ask your administrator to check the SSO setup.",
    )
}

/// A conditional write lost to a concurrent change of the account.
pub fn try_again() -> PageError {
    PageError::new(
        StatusCode::CONFLICT,
        "Please try again",
        "Your account changed while you were signing in. Start again from the sign-in page.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_keeps_same_origin_paths_only() {
        assert_eq!(
            return_to(Some("/oauth/authorize?x=1")),
            "/oauth/authorize?x=1"
        );
        assert_eq!(
            return_to(Some("/addons/1b2c/sso")),
            "/addons/1b2c/sso",
            "a routed path"
        );
        assert_eq!(
            return_to(Some(
                "/oauth/authorize?redirect_uri=https%3A%2F%2Fapp.example%2Fcb"
            )),
            "/oauth/authorize?redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
            "encoded slashes in the query are the query's business"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "",
            "/%2F%2Fevil.example/x",
            "/%2f%2fevil.example/x",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/account/%2F%2Fevil.example",
            "/account//evil.example",
            "/nowhere",
            "/deviceX",
            "/oauth/authorizeX",
        ] {
            assert_eq!(return_to(Some(bad)), DEFAULT_RETURN, "{bad:?}");
        }
        assert_eq!(return_to(None), DEFAULT_RETURN);
    }
}
