//! `oauth-authorize`: the browser side of OAuth 2.0. Routes: `GET /oauth/authorize` (the
//! code flow with PKCE S256: sign-in, consent, code), `POST /oauth/authorize` (the consent
//! form's answer, CSRF-protected), `GET /account/authorizations` (the signed-in person's
//! grants and API keys), `POST /account/authorizations/revoke`, `GET /account/apps` and
//! `POST /apps/{app}/transfer` (the person's apps, handing one over), and `GET/POST /device`
//! (the device flow's verification page, RFC 8628). Records and rules live in
//! `identity_shared::oauth`.

mod apps;
pub mod device;
mod pages;
pub mod request;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, Uri};
use identity_shared::AppState;
use identity_shared::accounts::AccountStatus;
use identity_shared::api_keys::ApiKeys;
use identity_shared::crypto;
use identity_shared::http::impersonation::refuse_if_impersonating;
use identity_shared::http::{Answer, Internal, PageError, SignedIn, fields, form};
use identity_shared::idps::Idps;
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
        .route("/account/apps", get(apps::list))
        .route("/apps/{app}/transfer", post(apps::transfer))
}

/// The function's whole service, as Lambda and `identity serve` run it.
pub fn app(state: AppState) -> Router {
    identity_shared::http::impersonation::service(routes(), state)
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
async fn approve(
    state: &AppState,
    v: &Valid,
    user: &SignedIn,
    status: StatusCode,
) -> Result<Response, Answer> {
    let store = &state.store;
    let grant = store
        .grant_for(&user.account.id, &v.client.client_id, &v.scopes)
        .await
        .map_err(Internal::from_display("grant write"))?;
    let code = store
        .issue_code(&CodeGrant {
            client_id: v.client.client_id.clone(),
            redirect_uri: v.redirect_uri.clone().into(),
            code_challenge: v.code_challenge.clone(),
            account_id: user.account.id.clone(),
            scope: v.scopes.to_string(),
            gid: grant.gid.clone(),
            issued_at: state.now(),
        })
        .await
        .map_err(Internal::from_display("code write"))?;
    tracing::info!(client_id = %v.client.client_id, gid = %grant.gid, "authorization code issued");
    let mut params = vec![("code", code.expose_secret().to_string())];
    if let Some(s) = &v.state {
        params.push(("state", s.clone()));
    }
    // RFC 9207: the issuer, so a client talking to several servers can tell who answered.
    params.push(("iss", state.config.base_url.clone()));
    Ok(redirect(status, &v.redirect_uri, &params))
}

/// The request judged as RFC 6749 §4.1.2.1 says: a bad client or redirect URI is a page,
/// anything else goes back to the client.
async fn valid(state: &AppState, pairs: &[(String, String)]) -> Result<Valid, Answer> {
    request::validate(state, pairs)
        .await
        .map_err(|refusal| Answer(refusal.into_response()))
}

/// `GET /oauth/authorize`.
async fn authorize(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Answer> {
    let pairs = parse_pairs(uri.query().unwrap_or("").as_bytes())?;
    let v = valid(&state, &pairs).await?;
    let user = state
        .signed_in(&headers)
        .await?
        .ok_or_else(|| page::login_redirect(&uri))?;
    if user.account.status == AccountStatus::Pending {
        return Ok(page::activate_account(&user.account.email));
    }
    refuse_if_impersonating(&user, "Authorizing an application")?;
    // A public client on a loopback redirect URI is asked about every time (RFC 8252 §8.6).
    let always_ask = v.client.always_asks(&v.redirect_uri);
    if !v.client.trusted || always_ask {
        let remembered = !always_ask
            && state
                .store
                .current_grant(&user.account.id, &v.client.client_id)
                .await
                .map_err(Internal::from_display("grant read"))?
                .is_some_and(|g| g.scopes().contains_all(&v.scopes));
        if !remembered {
            let csrf = consent_csrf(&user.id, &v.client.client_id);
            return Ok(pages::consent(&v, &user.account.email, &csrf));
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
) -> Result<Response, Answer> {
    let mut pairs = parse_pairs(&body)?;
    let user = state.signed_in(&headers).await?.ok_or_else(session_ended)?;
    refuse_if_impersonating(&user, "Authorizing an application")?;
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
        return Err(refused.into());
    }
    let v = valid(&state, &pairs).await?;
    if user.account.status == AccountStatus::Pending {
        return Ok(page::activate_account(&user.account.email));
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
            Ok(redirect(StatusCode::SEE_OTHER, &v.redirect_uri, &params))
        }
        _ => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Choose Allow or Deny.",
        )
        .into()),
    }
}

/// `GET /account/authorizations`.
async fn authorizations(State(state): State<AppState>, user: SignedIn) -> Result<Response, Answer> {
    let grants = state
        .store
        .grants_of(&user.account.id)
        .await
        .map_err(Internal::from_display("grants read"))?;
    let mut rows = Vec::with_capacity(grants.len());
    for g in grants {
        let client = state
            .store
            .client(&g.client_id)
            .await
            .map_err(Internal::from_display("client read"))?;
        rows.push((g, client));
    }
    let keys = state
        .store
        .api_keys_of(&user.account)
        .await
        .map_err(Internal::from_display("api keys read"))?;
    let mut page = pages::authorizations(
        &user.account.email,
        &rows,
        &keys,
        &authorizations_csrf(&user.id),
        &identity_shared::session::logout_csrf(&user.id),
    );
    // Signing out of a session from a SAML login goes on to the IdP's Single Logout
    // endpoint: browsers apply `form-action` to that redirect too, so the policy names it.
    if user.session.saml.is_some()
        && let Some(idp) = user.session.idp.as_deref()
        && let Some(slo) = state
            .store
            .idp(idp)
            .await
            .map_err(Internal::from_display("idp read"))?
            .and_then(|i| i.slo_url)
    {
        page.headers_mut().insert(
            http::header::CONTENT_SECURITY_POLICY,
            form::csp_with_form_action(form::origin_of(&slo).as_deref()),
        );
    }
    Ok(page)
}

/// `POST /account/authorizations/revoke`: `grant_id` (an application's grant) or
/// `api_key_id` (an API key), and `csrf`.
async fn revoke_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Answer> {
    let pairs = parse_pairs(&body)?;
    let user = state.signed_in(&headers).await?.ok_or_else(session_ended)?;
    let field = |name: &str| fields::value(&pairs, name);
    let token_ok = csrf_ok(field("csrf"), &authorizations_csrf(&user.id));
    if field("api_key_id").is_some() {
        refuse_if_impersonating(&user, "Changing API keys")?;
    }
    if let Err(refused) = form::check_session_post(&headers, &state.config.origin(), token_ok) {
        tracing::warn!("authorization revocation refused: another site, or no valid CSRF token");
        return Err(refused.into());
    }
    let not_found = || {
        PageError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such authorization on your account.",
        )
    };
    if let Some(key_id) = field("api_key_id") {
        if !state
            .store
            .revoke_api_key(&user.account.id, key_id)
            .await
            .map_err(Internal::from_display("api key revoke"))?
        {
            return Err(not_found().into());
        }
        tracing::info!(key_id, "api key revoked by its account");
    } else {
        let gid = field("grant_id").ok_or_else(not_found)?;
        let grant = state
            .store
            .grant(gid)
            .await
            .map_err(Internal::from_display("grant read"))?;
        if grant.is_none_or(|g| g.account_id != user.account.id) {
            return Err(not_found().into());
        }
        state
            .store
            .revoke_grant(gid)
            .await
            .map_err(Internal::from_display("grant revoke"))?;
        tracing::info!(gid, "grant revoked by its account");
    }
    Ok(redirect(
        StatusCode::SEE_OTHER,
        "/account/authorizations",
        &[],
    ))
}
