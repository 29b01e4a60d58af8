//! The SAML routes: `GET /sso/login` (SP-initiated: an AuthnRequest over HTTP-Redirect),
//! `POST /sso/acs` (validate, provision, sign in) and `GET /sso/metadata`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::Email;
use identity_shared::http::{Internal, PageError};
use identity_shared::idps::Idps;
use identity_shared::outbox::{self, LoggingSender};
use identity_shared::sso::{SamlRequest, SsoError, SsoLogin, SsoOutcome, SsoRecords};
use serde::Deserialize;

use crate::saml::{self, Refusal, Sp};
use crate::{upgrade, web};

#[derive(Deserialize)]
pub struct SsoLoginQuery {
    idp: Option<String>,
    return_to: Option<String>,
}

fn sp(state: &AppState) -> Sp {
    Sp::from_base_url(&state.config.base_url)
}

/// `GET /sso/login?idp=ID&return_to=PATH`.
pub async fn start(State(state): State<AppState>, Query(q): Query<SsoLoginQuery>) -> Response {
    let return_to = web::return_to(q.return_to.as_deref());
    let idp = match q.idp.as_deref() {
        Some(id) => state.store.idp(id).await,
        None => Ok(None),
    };
    let idp = match idp {
        Ok(Some(idp)) => idp,
        Ok(None) => {
            return PageError::new(
                StatusCode::NOT_FOUND,
                "Unknown organisation",
                "This single sign-on link names no identity provider we know. Start again from the sign-in page.",
            )
            .into_response();
        }
        Err(e) => return Internal::new("idp read", e).page().into_response(),
    };
    let keys = match state.secrets.saml_sp_keys().await {
        Ok(k) => k,
        Err(e) => return Internal::new("saml sp keys", e).page().into_response(),
    };
    let (request_id, url) =
        match saml::authn_request_redirect(&idp, &sp(&state), &keys, &return_to, state.now()) {
            Ok(r) => r,
            Err(e) => return Internal::new("authn request", e).page().into_response(),
        };
    let record = SamlRequest {
        idp: idp.id.clone(),
        return_to,
    };
    if let Err(e) = state.store.save_saml_request(&request_id, &record).await {
        return Internal::new("save authn request", e)
            .page()
            .into_response();
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
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
pub fn refuse(refusal: Refusal) -> Response {
    tracing::warn!(reason = refusal.reason(), "SAML response refused");
    let status = match refusal {
        Refusal::Malformed | Refusal::Doctype | Refusal::UnsupportedEncoding => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::FORBIDDEN,
    };
    PageError::new(status, "Sign-in refused", refusal.user_message()).into_response()
}

/// `POST /sso/acs`: form `SAMLResponse`, `RelayState`.
pub async fn acs(State(state): State<AppState>, body: Bytes) -> Response {
    let form = match web::form_fields(&body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let Some(encoded) = form.get("SAMLResponse") else {
        return refuse(Refusal::Malformed);
    };
    let xml = match saml::decode_post(encoded) {
        Ok(x) => x,
        Err(r) => return refuse(r),
    };
    let routing = match saml::routing(&xml) {
        Ok(r) => r,
        Err(r) => return refuse(r),
    };
    let store = &state.store;
    let idp = match store.idp_by_entity_id(&routing.issuer).await {
        Ok(Some(idp)) => idp,
        Ok(None) => return refuse(Refusal::UnknownIdp),
        Err(e) => return Internal::new("idp read", e).page().into_response(),
    };
    // SP-initiated: the request we stored names the IdP and where to go back to.
    let request = match routing.in_response_to.as_deref() {
        Some(id) => match store.saml_request(id).await {
            Ok(Some(r)) if r.idp == idp.id => Some((id, r)),
            Ok(_) => return refuse(Refusal::UnknownRequest),
            Err(e) => {
                return Internal::new("authn request read", e)
                    .page()
                    .into_response();
            }
        },
        None => None,
    };
    let verified = match saml::validate(
        &xml,
        &idp,
        &sp(&state),
        request.as_ref().map(|(id, _)| *id),
        state.now(),
    ) {
        Ok(v) => v,
        Err(r) => return refuse(r),
    };
    let Ok(email) = Email::parse(&verified.email) else {
        return refuse(Refusal::NoEmail);
    };
    // An IdP speaks only for its own email domains, never for another IdP's.
    let domain_owner = match store.idp_for_domain(email.domain()).await {
        Ok(o) => o,
        Err(e) => return Internal::new("idp read", e).page().into_response(),
    };
    let outside = match &domain_owner {
        Some(owner) => owner.id != idp.id,
        None => !idp.domains.is_empty(),
    };
    if outside {
        tracing::warn!(
            reason = "email domain not the IdP's",
            "SAML response refused"
        );
        return PageError::new(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "Your identity provider signed you in with an email address outside your organisation's domains. Ask your administrator to check the SSO setup.",
        )
        .into_response();
    }
    let return_to = match &request {
        Some((_, r)) => r.return_to.clone(),
        None => web::return_to(form.get("RelayState").map(String::as_str)),
    };
    let keys = match state.secrets.cookie_keys().await {
        Ok(k) => k,
        Err(e) => return Internal::new("cookie keys", e).page().into_response(),
    };
    let welcome_base = state.config.url("/account/welcome/");
    let login = SsoLogin {
        idp: &idp,
        email: &email,
        request_id: request.as_ref().map(|(id, _)| *id),
        assertion_id: &verified.assertion_id,
        valid_until: verified.valid_until,
        welcome_base: &welcome_base,
        return_to: &return_to,
    };
    let outcome = match store.complete_sso_login(&login, &keys).await {
        Ok(o) => o,
        Err(SsoError::Replayed) => return refuse(Refusal::Replayed),
        Err(SsoError::UnknownRequest) => return refuse(Refusal::UnknownRequest),
        Err(SsoError::OtherIdp) => return other_idp(),
        Err(SsoError::Changed) => return try_again(),
        Err(SsoError::Store(e)) => return Internal::new("sso login", e).page().into_response(),
    };
    match outcome {
        SsoOutcome::SignIn { account, created } => {
            if created {
                tracing::info!(account_id = %account.id, idp = %idp.id, "account created at first SSO login (pending)");
                outbox::deliver_newest(store, &LoggingSender, &email).await;
            }
            if let Err(e) = web::apply_team_role(&state, &idp, &account).await {
                return e.page().into_response();
            }
            tracing::info!(account_id = %account.id, idp = %idp.id, "SSO sign-in");
            web::sign_in(&state, &account, Some(&idp.id), &return_to, vec![]).await
        }
        SsoOutcome::ConfirmUpgrade { account, token } => {
            tracing::info!(account_id = %account.id, idp = %idp.id, "SSO upgrade awaiting the owner's confirmation");
            let cookie = upgrade::cookie(&state, &keys, &token);
            web::see_other("/sso/upgrade", &[cookie])
        }
    }
}

pub fn other_idp() -> Response {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Sign-in refused",
        "Your account is under another organisation's single sign-on. Sign in through that organisation instead.",
    )
    .into_response()
}

pub fn try_again() -> Response {
    PageError::new(
        StatusCode::CONFLICT,
        "Please try again",
        "Your account changed while you were signing in. Start again from the sign-in page.",
    )
    .into_response()
}
