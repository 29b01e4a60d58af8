//! SAML Single Logout: `GET /sso/slo` (HTTP-Redirect) and `POST /sso/slo` (HTTP-POST) take
//! the IdP's `LogoutResponse` to ours and its own `LogoutRequest`; [`after_logout`] sends
//! ours when someone signs out of an SSO session (`POST /logout`).
//!
//! Our session always ends first, whatever the IdP answers. A refused message (unsigned,
//! wrongly signed, for another Destination, stale, replayed, answering nothing we sent)
//! ends nothing and shows a page saying so.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use identity_shared::AppState;
use identity_shared::http::{Internal, PageError, page};
use identity_shared::idps::{Idp, Idps};
use identity_shared::session::{Session, Sessions};
use identity_shared::sso::{REPLAY_MARGIN_SECS, REQUEST_TTL_SECS};
use identity_shared::store::SingleUse;
use maud::html;
use serde::{Deserialize, Serialize};

use crate::acs::sp;
use crate::saml::{self, Incoming, Logout, Refusal};
use crate::web;

/// Our LogoutRequests waiting for their answer (single use, by IdP and request ID: an
/// answer signed by another IdP finds nothing and spends nothing).
const OUR_REQUEST: &str = "saml-logout-request";
/// The IdP's LogoutRequest IDs already acted on (replay).
const THEIR_REQUEST: &str = "saml-logout";

#[derive(Serialize, Deserialize)]
struct Sent {
    idp: String,
}

/// `GET /sso/slo?SAMLRequest|SAMLResponse=…`.
pub async fn redirect(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let incoming = Incoming::from_query(query.as_deref().unwrap_or(""));
    answer(state, incoming).await
}

/// `POST /sso/slo` with `SAMLRequest|SAMLResponse`, `RelayState`.
pub async fn post(State(state): State<AppState>, body: Bytes) -> Response {
    let incoming = match web::form_fields(&body) {
        Ok(fields) => Incoming::from_form(&fields),
        Err(page) => return page.into_response(),
    };
    answer(state, incoming).await
}

async fn answer(state: AppState, incoming: Result<Incoming, Refusal>) -> Response {
    let result = match incoming {
        Ok(incoming) => handle(&state, incoming).await,
        Err(r) => Err(refusal(r)),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

async fn handle(state: &AppState, incoming: Incoming) -> Result<Response, PageError> {
    // Guarded and parsed once, for the Issuer and the verification below.
    let received = incoming.receive().map_err(refusal)?;
    let issuer = saml::logout_issuer(&received).map_err(refusal)?;
    let idp = state
        .store
        .idp_by_entity_id(&issuer)
        .await
        .map_err(Internal::from_display("idp read"))?
        .ok_or_else(|| refusal(Refusal::UnknownIdp))?;
    if !web::idp_usable(state, &idp) {
        return Err(refusal(Refusal::DevelopmentIdp));
    }
    let sp = sp(state);
    match saml::verify_logout(&incoming, &received, &idp, &sp, state.now()).map_err(refusal)? {
        Logout::Request {
            id,
            name_id,
            session_indexes,
            valid_until,
        } => {
            let first = state
                .store
                .mark_used(
                    THEIR_REQUEST,
                    &format!("{}#{id}", idp.id),
                    valid_until + REPLAY_MARGIN_SECS,
                )
                .await
                .map_err(Internal::from_display("logout replay record"))?;
            if !first {
                return Err(refusal(Refusal::Replayed));
            }
            let ended = state
                .store
                .end_saml_sessions(&idp.id, &name_id, &session_indexes)
                .await
                .map_err(Internal::from_display("end saml sessions"))?;
            tracing::info!(idp = %idp.id, ended, "SAML LogoutRequest from the IdP: sessions ended");
            let Some(slo_url) = idp.slo_url.as_deref() else {
                return Ok(signed_out_page(&idp, true));
            };
            let keys = state
                .secrets
                .saml_sp_keys()
                .await
                .map_err(Internal::from_display("saml sp keys"))?;
            let url = saml::logout_response_redirect(
                slo_url,
                &sp,
                &keys,
                &id,
                incoming.relay_state.as_deref(),
                state.now(),
            )
            .map_err(Internal::from_display("logout response"))?;
            Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
        }
        Logout::Response {
            in_response_to,
            success,
        } => {
            let sent = state
                .store
                .take_single_use(OUR_REQUEST, &format!("{}#{in_response_to}", idp.id))
                .await
                .map_err(Internal::from_display("logout request read"))?
                .and_then(|v| serde_json::from_value::<Sent>(v).ok());
            if sent.is_none_or(|s| s.idp != idp.id) {
                return Err(refusal(Refusal::UnknownRequest));
            }
            tracing::info!(idp = %idp.id, success, "SAML LogoutResponse from the IdP");
            Ok(signed_out_page(&idp, success))
        }
    }
}

fn signed_out_page(idp: &Idp, confirmed: bool) -> Response {
    let body = html! {
        @if confirmed {
            p {
                "You are signed out here and at your organisation's identity provider "
                strong { (idp.id) } "."
            }
        } @else {
            p {
                "You are signed out here. Your organisation's identity provider "
                strong { (idp.id) } " did not confirm that it signed you out too: close your \
                browser to be sure."
            }
        }
        p { a href="/login" { "Sign in again" } }
    };
    page::html(StatusCode::OK, "Signed out", body)
}

/// A refused logout message: a page, a log line with the reason, nothing ended.
fn refusal(refusal: Refusal) -> PageError {
    tracing::warn!(reason = refusal.reason(), "SAML logout message refused");
    let (status, message) = match refusal {
        Refusal::Malformed | Refusal::Doctype | Refusal::UnsupportedEncoding => (
            StatusCode::BAD_REQUEST,
            "The sign-out message from your organisation could not be read.",
        ),
        Refusal::Replayed | Refusal::UnknownRequest => (
            StatusCode::FORBIDDEN,
            "This sign-out message was already used, or answers no sign-out started here.",
        ),
        Refusal::Expired | Refusal::NotYetValid | Refusal::TooOld => (
            StatusCode::FORBIDDEN,
            "This sign-out message has expired or is not valid yet; check your device's clock.",
        ),
        _ => (
            StatusCode::FORBIDDEN,
            "This sign-out message could not be verified as coming from your organisation's \
identity provider, so nothing was signed out.",
        ),
    };
    PageError::new(status, "Sign-out refused", message)
}

/// After `POST /logout` ended `session` (already gone): when it came from a SAML login at
/// an IdP with a Single Logout endpoint, where to send the browser so the IdP ends its
/// session too (our signed LogoutRequest). None: no IdP to tell, or telling it failed
/// (logged; our session is over either way).
pub async fn after_logout(state: &AppState, session: &Session) -> Option<String> {
    let (Some(idp), Some(subject)) = (session.idp.as_deref(), session.saml.as_ref()) else {
        return None;
    };
    let result: Result<Option<String>, String> = async {
        let Some(idp) = state.store.idp(idp).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let Some(slo_url) = idp
            .slo_url
            .as_deref()
            .filter(|_| web::idp_usable(state, &idp))
        else {
            return Ok(None);
        };
        let keys = state
            .secrets
            .saml_sp_keys()
            .await
            .map_err(|e| e.to_string())?;
        let (id, url) =
            saml::logout_request_redirect(slo_url, &sp(state), &keys, subject, state.now())?;
        let sent = serde_json::to_value(Sent {
            idp: idp.id.clone(),
        })
        .map_err(|e| e.to_string())?;
        state
            .store
            .put_single_use(
                OUR_REQUEST,
                &format!("{}#{id}", idp.id),
                &sent,
                state.now() + REQUEST_TTL_SECS,
            )
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(idp = %idp.id, "SAML LogoutRequest sent to the IdP");
        Ok(Some(url))
    }
    .await;
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "SAML LogoutRequest not sent; signed out here only");
        None
    })
}
