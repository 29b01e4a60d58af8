//! `oauth-authorize`: the browser side of OAuth 2.0. Routes: `GET /oauth/authorize` (the
//! code flow with PKCE S256: sign-in, consent, code), `POST /oauth/authorize` (the consent
//! form's answer, CSRF-protected), `GET /account/authorizations` (the signed-in person's
//! grants), `POST /account/authorizations/revoke`, and `GET/POST /device` (the device
//! flow's verification page, RFC 8628). Records and rules live in
//! `identity_shared::oauth`.

pub mod device;
pub mod pages;
pub mod request;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, Uri};
use identity_shared::AppState;
use identity_shared::accounts::AccountStatus;
use identity_shared::crypto;
use identity_shared::http::{Internal, PageError, SignedIn, form, plumbing};
use identity_shared::oauth::{AuthCodes, CodeGrant, Grants, OAuthClients};
use identity_shared::secrets::SecretKind;

use identity_shared::http::page::{self, redirect};
use request::{Valid, parse_pairs};

/// The keys this function fetches during Lambda init.
pub const WARM: &[SecretKind] = &[SecretKind::Cookie];

/// The CSRF token of the consent form: bound to the session and to the client.
pub fn consent_csrf(session: &identity_shared::session::SessionId, client_id: &str) -> String {
    session.derive(&format!("oauth-consent {client_id}"))
}

/// The CSRF token of the authorizations page's forms.
pub fn authorizations_csrf(session: &identity_shared::session::SessionId) -> String {
    session.derive("account-authorizations")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize", get(authorize).post(consent_answer))
        .route("/device", get(device::show).post(device::answer))
        .route("/account/authorizations", get(authorizations))
        .route("/account/authorizations/revoke", post(revoke_authorization))
}

/// The function's whole service, as Lambda and `identity serve` run it.
pub fn app(state: AppState) -> Router {
    plumbing::layers(routes()).with_state(state)
}

fn csrf_ok(presented: Option<&str>, expected: &str) -> bool {
    presented.is_some_and(|p| crypto::constant_time_eq(p.as_bytes(), expected.as_bytes()))
}

fn refused_form() -> Response {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    )
    .into_response()
}

fn session_ended() -> Response {
    PageError::new(
        StatusCode::UNAUTHORIZED,
        "Signed out",
        "Your session has ended. Return to the application and start again.",
    )
    .into_response()
}

/// Issues a code for the grant (made or widened to the request's scopes) and sends the
/// person back to the client with it.
async fn approve(state: &AppState, v: &Valid, user: &SignedIn, status: StatusCode) -> Response {
    let store = &state.store;
    let grant = match store
        .grant_for(&user.account.id, &v.client.client_id, &v.scopes)
        .await
    {
        Ok(g) => g,
        Err(e) => return Internal::new("grant write", e).page().into_response(),
    };
    let code = match store
        .issue_code(&CodeGrant {
            client_id: v.client.client_id.clone(),
            redirect_uri: v.redirect_uri.clone(),
            code_challenge: v.code_challenge.clone(),
            account_id: user.account.id.clone(),
            scope: v.scopes.to_string(),
            gid: grant.gid.clone(),
            issued_at: state.now(),
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return Internal::new("code write", e).page().into_response(),
    };
    tracing::info!(client_id = %v.client.client_id, gid = %grant.gid, "authorization code issued");
    let mut params = vec![("code", code.expose_secret().to_string())];
    if let Some(s) = &v.state {
        params.push(("state", s.clone()));
    }
    // RFC 9207: the issuer, so a client talking to several servers can tell who answered.
    params.push(("iss", state.config.base_url.clone()));
    redirect(status, &v.redirect_uri, &params)
}

/// `GET /oauth/authorize`.
async fn authorize(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let pairs = match parse_pairs(uri.query().unwrap_or("").as_bytes()) {
        Ok(p) => p,
        Err(page) => return page.into_response(),
    };
    let v = match request::validate(&state, &pairs).await {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    let user = match state.signed_in(&headers).await {
        Ok(Some(u)) => u,
        Ok(None) => return page::login_redirect(&uri),
        Err(e) => return e.page().into_response(),
    };
    if user.account.status == AccountStatus::Pending {
        return page::activate_account(&user.account.email);
    }
    // A public client on a loopback redirect URI is asked about every time (RFC 8252 §8.6).
    let always_ask = v.client.always_asks(&v.redirect_uri);
    if !v.client.trusted || always_ask {
        let remembered = !always_ask
            && match state
                .store
                .current_grant(&user.account.id, &v.client.client_id)
                .await
            {
                Ok(g) => g.is_some_and(|g| g.scopes().contains_all(&v.scopes)),
                Err(e) => return Internal::new("grant read", e).page().into_response(),
            };
        if !remembered {
            let csrf = consent_csrf(&user.id, &v.client.client_id);
            return pages::consent(&v, &user.account.email, &csrf);
        }
    }
    approve(&state, &v, &user, StatusCode::FOUND).await
}

/// `POST /oauth/authorize`: the consent form's answer. The session and its CSRF token come
/// first; then the request is judged again exactly as on `GET` (the form's hidden fields
/// are only a copy of it).
async fn consent_answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut pairs = match parse_pairs(&body) {
        Ok(p) => p,
        Err(page) => return page.into_response(),
    };
    let user = match state.signed_in(&headers).await {
        Ok(Some(u)) => u,
        Ok(None) => return session_ended(),
        Err(e) => return e.page().into_response(),
    };
    let take = |pairs: &mut Vec<(String, String)>, name: &str| -> Vec<String> {
        let (taken, rest): (Vec<_>, Vec<_>) = pairs.drain(..).partition(|(k, _)| k == name);
        *pairs = rest;
        taken.into_iter().map(|(_, v)| v).collect()
    };
    let csrf = take(&mut pairs, "csrf");
    let decision = take(&mut pairs, "decision");
    let client_id = pairs
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let expected = consent_csrf(&user.id, client_id);
    let token_ok = csrf.len() == 1 && csrf_ok(csrf.first().map(String::as_str), &expected);
    if let Err(refused) = form::check_session_post(&headers, &state.config.origin(), token_ok) {
        tracing::warn!("consent answer refused: another site, or no valid CSRF token");
        return refused.into_response();
    }
    let v = match request::validate(&state, &pairs).await {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    if user.account.status == AccountStatus::Pending {
        return page::activate_account(&user.account.email);
    }
    match decision.as_slice() {
        [d] if d == "allow" => approve(&state, &v, &user, StatusCode::SEE_OTHER).await,
        [d] if d == "deny" => {
            let mut params = vec![
                ("error", "access_denied".to_string()),
                (
                    "error_description",
                    "the user denied the request".to_string(),
                ),
            ];
            if let Some(s) = &v.state {
                params.push(("state", s.clone()));
            }
            params.push(("iss", state.config.base_url.clone()));
            redirect(StatusCode::SEE_OTHER, &v.redirect_uri, &params)
        }
        _ => PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Choose Allow or Deny.",
        )
        .into_response(),
    }
}

/// `GET /account/authorizations`.
async fn authorizations(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let user = match state.signed_in(&headers).await {
        Ok(Some(u)) => u,
        Ok(None) => return page::login_redirect(&uri),
        Err(e) => return e.page().into_response(),
    };
    let grants = match state.store.grants_of(&user.account.id).await {
        Ok(g) => g,
        Err(e) => return Internal::new("grants read", e).page().into_response(),
    };
    let mut rows = Vec::with_capacity(grants.len());
    for g in grants {
        match state.store.client(&g.client_id).await {
            Ok(c) => rows.push((g, c)),
            Err(e) => return Internal::new("client read", e).page().into_response(),
        }
    }
    pages::authorizations(
        &user.account.email,
        &rows,
        &authorizations_csrf(&user.id),
        &identity_shared::session::logout_csrf(&user.id),
    )
}

/// `POST /account/authorizations/revoke`: `grant_id` and `csrf`.
async fn revoke_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = match parse_pairs(&body) {
        Ok(p) => p,
        Err(page) => return page.into_response(),
    };
    let user = match state.signed_in(&headers).await {
        Ok(Some(u)) => u,
        Ok(None) => return session_ended(),
        Err(e) => return e.page().into_response(),
    };
    let field = |name: &str| -> Option<&str> {
        let mut it = pairs.iter().filter(|(k, _)| k == name);
        match (it.next(), it.next()) {
            (Some((_, v)), None) => Some(v.as_str()),
            _ => None,
        }
    };
    let token_ok = csrf_ok(field("csrf"), &authorizations_csrf(&user.id));
    if let Err(refused) = form::check_session_post(&headers, &state.config.origin(), token_ok) {
        tracing::warn!("authorization revocation refused: another site, or no valid CSRF token");
        return refused.into_response();
    }
    let not_found = || {
        PageError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such authorization on your account.",
        )
        .into_response()
    };
    let Some(gid) = field("grant_id") else {
        return not_found();
    };
    match state.store.grant(gid).await {
        Ok(Some(g)) if g.account_id == user.account.id => {}
        Ok(_) => return not_found(),
        Err(e) => return Internal::new("grant read", e).page().into_response(),
    }
    if let Err(e) = state.store.revoke_grant(gid).await {
        return Internal::new("grant revoke", e).page().into_response();
    }
    tracing::info!(gid, "grant revoked by its account");
    redirect(StatusCode::SEE_OTHER, "/account/authorizations", &[])
}
