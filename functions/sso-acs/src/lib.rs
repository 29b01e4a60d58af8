//! `sso-acs`: sign-in and the session. Routes: `GET/POST /login`, `GET /sso/login`,
//! `POST /sso/acs`, `POST /sso/continue`, `GET /sso/metadata`, `GET/POST /sso/slo`, `GET/POST /sso/upgrade`, `GET/POST /sso/link/{token}`,
//! `GET/POST /account/welcome/{token}`, `GET/POST /account/password/reset[/{token}]`,
//! `GET /session`, `POST /logout`.

pub mod acs;
pub mod impersonate;
pub mod link;
pub mod login;
pub mod mail;
pub mod reset;
pub mod saml;
pub mod slo;
pub mod upgrade;
pub mod web;
pub mod welcome;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::Offboarding;
use identity_shared::http::{JsonError, form};
use identity_shared::secrets::SecretKind;
use identity_shared::session::{self, SessionId, Sessions};

/// The keys this function fetches during Lambda init.
pub const WARM: &[SecretKind] = &[SecretKind::Cookie, SecretKind::SamlSp];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::show).post(login::submit))
        .route("/sso/login", get(acs::start))
        .route("/sso/acs", post(acs::acs))
        .route("/sso/continue", post(acs::continue_login))
        .route("/sso/metadata", get(acs::metadata))
        .route("/sso/slo", get(slo::redirect).post(slo::post))
        .route("/sso/upgrade", get(upgrade::show).post(upgrade::answer))
        .route("/sso/link/{token}", get(link::show).post(link::confirm))
        .route(
            "/account/welcome/{token}",
            get(welcome::show).post(welcome::activate),
        )
        .route(
            "/account/impersonate/{token}",
            get(impersonate::show).post(impersonate::start),
        )
        .route(
            "/account/password/reset",
            get(reset::ask).post(reset::send_link),
        )
        .route(
            "/account/password/reset/{token}",
            get(reset::show).post(reset::set),
        )
        .route("/session", get(current_session))
        .route("/logout", post(logout))
}

/// The function's whole service, as Lambda and `identity serve` run it.
pub fn app(state: AppState) -> Router {
    identity_shared::http::impersonation::service(routes(), state)
}

/// `GET /session`: the signed-in user, or 401.
async fn current_session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.signed_in(&headers).await {
        Ok(Some(s)) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({
                "email": s.account.email,
                "account_id": s.account.id,
                "status": s.account.status.as_str(),
                "sso": s.session.sso,
                "idp": s.session.idp,
                "expires_at": identity_shared::clock::rfc3339(s.session.expires_at),
            })),
        )
            .into_response(),
        Ok(None) => {
            JsonError::new(StatusCode::UNAUTHORIZED, "no_session", "not signed in").into_response()
        }
        Err(e) => e.json().into_response(),
    }
}

/// Ends this browser's session (`id`) and, for "sign out everywhere" (the account page's
/// second button), every session of the account with its API keys (grants stay). Returns
/// the session as it was when a page is wanted, for the IdP's Single Logout.
async fn end_sessions(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&SessionId>,
    everywhere: bool,
    wants_html: bool,
) -> Result<Option<identity_shared::session::Session>, identity_shared::http::Internal> {
    use identity_shared::http::Internal;
    let mut ended = None;
    if everywhere && let Some(user) = state.signed_in(headers).await? {
        state
            .store
            .sign_out_everywhere(&user.account.id)
            .await
            .map_err(Internal::from_display("sign out everywhere"))?;
        tracing::info!("every session of the account ended by its owner");
        ended = Some(user.session);
    }
    if let Some(id) = id {
        if wants_html && ended.is_none() {
            ended = state
                .store
                .session(id)
                .await
                .map_err(Internal::from_display("read session"))?;
        }
        state
            .store
            .end_session(id)
            .await
            .map_err(Internal::from_display("end session"))?;
    }
    Ok(ended)
}

/// `POST /logout`: ends the session server-side and clears the cookie. Browsers (asking
/// for HTML) are sent to the login page, or, for a session from a SAML login at an IdP
/// with a Single Logout endpoint, to the IdP with our signed LogoutRequest; API clients
/// get 204.
async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // The same proof as every form: same-origin by Fetch Metadata, or the session-bound
    // token of the sign-out button. Another site cannot sign people out.
    let id = match session::cookie_value(
        &headers,
        session::cookie_name(state.config.secure_cookies()),
    ) {
        Some(value) => match state.secrets.cookie_keys().await {
            Ok(keys) => SessionId::open(&keys, value),
            Err(e) => {
                return identity_shared::http::Internal::new("cookie keys", e)
                    .json()
                    .into_response();
            }
        },
        None => None,
    };
    let fields = web::form_fields(&body).unwrap_or_default();
    let token_ok = match (&id, fields.get("csrf")) {
        (Some(id), Some(p)) => identity_shared::crypto::constant_time_eq(
            p.as_bytes(),
            session::logout_csrf(id).as_bytes(),
        ),
        _ => false,
    };
    if let Err(refused) = form::check_post(&headers, &state.config.origin(), token_ok) {
        tracing::warn!("sign-out refused: no proof it came from our pages");
        return refused.into_response();
    }
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let everywhere = fields.get("everywhere").map(String::as_str) == Some("1");
    // The session as it was, for a browser's SAML Single Logout once it is gone.
    let ended = match end_sessions(&state, &headers, id.as_ref(), everywhere, wants_html).await {
        Ok(ended) => ended,
        Err(e) => return e.json().into_response(),
    };
    let clear = [(
        header::SET_COOKIE,
        session::clear_cookie(state.config.secure_cookies()),
    )];
    if wants_html {
        // Our session is over; an SSO session's IdP is told too (SAML Single Logout).
        let next = match &ended {
            Some(session) => slo::after_logout(&state, session).await,
            None => None,
        };
        (clear, Redirect::to(next.as_deref().unwrap_or("/login"))).into_response()
    } else {
        (StatusCode::NO_CONTENT, clear).into_response()
    }
}
