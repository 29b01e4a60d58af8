//! The development IdP of `identity serve` (never in a Lambda): a page where a person types
//! any email and is signed in through a real SAML Response, signed with XML-DSig by a
//! development key kept in the embedded store, so the whole SSO path runs locally.
//!
//! It registers itself as IdP `dev` (entity ID `{base}/dev-idp`, marked `development` and
//! `any_domain`: it signs in new accounts of any email no other IdP owns, never an existing
//! account; IdP-initiated allowed), only on the embedded store, and refreshes that IdP's
//! certificate whenever its key is new. The ACS refuses it outside `identity serve`.

use maud::html;
use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine;
use http::StatusCode;
use identity_shared::AppState;
use identity_shared::accounts::Email;
use identity_shared::http::{PageError, page};
use identity_shared::idps::{Idp, Idps};
use identity_shared::store::{Item, Table, record};
use serde::{Deserialize, Serialize};
use sso_acs::saml::Sp;
use sso_acs::saml::idp_signer::{IdpSigner, ResponseSpec, Sign};

pub const ID: &str = "dev";
const KEY_PK: &str = "dev-idp";

/// The dev IdP's signer and where it stands.
pub struct DevIdp {
    signer: IdpSigner,
    entity_id: String,
    sp: Sp,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    key_pem: String,
    cert_pem: String,
}

/// Loads (or makes, on first start) the dev IdP's key and registers the IdP.
pub async fn install(state: &AppState) -> Result<Arc<DevIdp>, String> {
    let store = &state.store;
    let stored = store
        .get::<StoredKey>(Table::Keys, KEY_PK, KEY_PK)
        .await
        .map_err(|e| e.to_string())?;
    let signer = match stored {
        Some(k) => IdpSigner::from_pem(&k.key_pem, &k.cert_pem)?,
        None => {
            let signer = IdpSigner::generate("identity development IdP")?;
            let item = Item::new(
                KEY_PK,
                KEY_PK,
                &StoredKey {
                    key_pem: signer.key_pem().to_string(),
                    cert_pem: signer.cert_pem().to_string(),
                },
            )
            .map_err(|e| e.to_string())?;
            store
                .write(vec![record::create(Table::Keys, item)])
                .await
                .map_err(|e| e.to_string())?;
            signer
        }
    };
    let entity_id = state.config.url("/dev-idp");
    let cert = signer.certificate_base64();
    match store.idp(ID).await.map_err(|e| e.to_string())? {
        Some(idp) if idp.entity_id == entity_id && idp.development && idp.any_domain => {
            if idp.certificates != [cert.clone()] {
                store
                    .set_idp_certificates(ID, vec![cert])
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        existing => {
            if existing.is_some() {
                // Served on another address before, or registered by an older version:
                // re-register under this base URL, marked as the development IdP.
                store.remove_idp(ID).await.map_err(|e| e.to_string())?;
            }
            let idp = Idp {
                id: ID.into(),
                entity_id: entity_id.clone(),
                sso_url: state.config.url("/dev-idp/sso"),
                certificates: vec![cert],
                domains: vec![],
                team: None,
                enterprise: None,
                allow_idp_initiated: true,
                require_mfa: false,
                mfa_contexts: vec![],
                want_authn_requests_signed: false,
                slo_url: None,
                any_domain: true,
                development: true,
                generation: String::new(),
                created_at: state.now(),
                version: 1,
            };
            store.add_idp(&idp).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(Arc::new(DevIdp {
        signer,
        entity_id,
        sp: Sp::from_base_url(&state.config.base_url),
    }))
}

/// `GET/POST /dev-idp/sso`.
pub fn routes(dev: Arc<DevIdp>) -> Router<AppState> {
    Router::new()
        .route("/dev-idp/sso", get(show).post(respond))
        .layer(Extension(dev))
}

#[derive(Deserialize)]
struct SsoQuery {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

fn bad(message: &str) -> Response {
    PageError::new(StatusCode::BAD_REQUEST, "Development IdP", message).into_response()
}

/// The ID of an AuthnRequest in the HTTP-Redirect binding (base64 of raw DEFLATE), checked
/// to be meant for our ACS.
pub fn request_id(encoded: &str, sp: &Sp) -> Result<String, &'static str> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "The SAMLRequest is not base64.")?;
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .take(64 * 1024)
        .read_to_string(&mut xml)
        .map_err(|_| "The SAMLRequest is not DEFLATE-compressed XML.")?;
    let request: samael::schema::AuthnRequest = xml
        .parse()
        .map_err(|_| "The SAMLRequest is not an AuthnRequest.")?;
    match request.assertion_consumer_service_url.as_deref() {
        Some(acs) if acs == sp.acs_url => Ok(request.id),
        _ => Err("The AuthnRequest is for another service provider."),
    }
}

async fn show(Extension(dev): Extension<Arc<DevIdp>>, Query(q): Query<SsoQuery>) -> Response {
    let id = match q.saml_request.as_deref().map(|r| request_id(r, &dev.sp)) {
        Some(Ok(id)) => id,
        Some(Err(m)) => return bad(m),
        None => String::new(),
    };
    let relay = q.relay_state.unwrap_or_default();
    page::html(
        StatusCode::OK,
        "Development IdP",
        html! {
            p class="muted" {
                "A local identity provider for trying SSO: it signs in whoever you type, with a \
                real signed SAML Response. It exists only in " code { "identity serve" } "."
            }
            form method="post" action="/dev-idp/sso" {
                (page::hidden("request_id", &id))
                (page::hidden("relay_state", &relay))
                label for="email" { "Email" }
                input type="email" id="email" name="email" required autocomplete="off";
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The development IdP's form: `email`, and the `request_id` and `relay_state` it carried.
struct Answer {
    email: String,
    request_id: String,
    relay_state: String,
}

impl Answer {
    fn read(body: &[u8]) -> Option<Self> {
        let mut f = identity_shared::http::fields::read_unique(body).ok()?;
        Some(Self {
            email: f.remove("email")?,
            request_id: f.remove("request_id").unwrap_or_default(),
            relay_state: f.remove("relay_state").unwrap_or_default(),
        })
    }
}

async fn respond(
    State(state): State<AppState>,
    Extension(dev): Extension<Arc<DevIdp>>,
    body: Bytes,
) -> Response {
    let Some(answer) = Answer::read(&body) else {
        return bad("The form could not be read.");
    };
    let Ok(email) = Email::parse(&answer.email) else {
        return bad("Enter a valid email address.");
    };
    let spec = ResponseSpec {
        issuer: dev.entity_id.clone(),
        destination: dev.sp.acs_url.clone(),
        audience: dev.sp.entity_id.clone(),
        recipient: dev.sp.acs_url.clone(),
        email: email.as_str().to_string(),
        in_response_to: Some(answer.request_id).filter(|r| !r.is_empty()),
        authn_context: Some(
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".into(),
        ),
        now: state.now(),
        lifetime_secs: 300,
        sign: Sign::Both,
    };
    let xml = match dev.signer.response(&spec) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "dev IdP could not sign a response");
            return bad("The development IdP could not sign a response.");
        }
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
    page::html(
        StatusCode::OK,
        "Development IdP",
        html! {
            p { "Signed in as " strong { (email.as_str()) } " at the development IdP." }
            form method="post" action="/sso/acs" {
                (page::hidden("SAMLResponse", &encoded))
                (page::hidden("RelayState", &answer.relay_state))
                button type="submit" { "Continue to the service" }
            }
        },
    )
}
