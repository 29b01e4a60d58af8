//! The authorization request (RFC 6749 §4.1.1 with PKCE): parsed and judged before anyone
//! is asked to sign in. Until the client and its redirect URI are known good, a refusal is
//! an error page (redirecting would make us an open redirector); after that, the refusal
//! goes back to the client as `error`, `error_description` and `state` on its redirect URI.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use identity_core::authorize::{self, Refused, Registered, Untrusted};
use identity_shared::AppState;
use identity_shared::http::page::redirect;
use identity_shared::http::{Internal, PageError};
use identity_shared::oauth::{OAuthClient, OAuthClients, Scopes};

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct Valid {
    pub client: OAuthClient,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub code_challenge: String,
}

/// Why a request is refused, and where the answer goes.
#[derive(Debug)]
pub enum Refusal {
    /// The client or redirect URI cannot be trusted: an error page, never a redirect.
    Page(PageError),
    /// A well-identified client: its redirect URI gets the error (§4.1.2.1).
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
        /// RFC 9207: error responses name the issuer too.
        issuer: String,
    },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(p) => p.into_response(),
            Refusal::Redirect {
                redirect_uri,
                error,
                description,
                state,
                issuer,
            } => {
                let mut params = vec![
                    ("error", error.to_string()),
                    ("error_description", description),
                ];
                if let Some(s) = state {
                    params.push(("state", s));
                }
                params.push(("iss", issuer));
                redirect(StatusCode::FOUND, &redirect_uri, &params)
            }
        }
    }
}

/// The query or form as pairs, in order, repeats kept; empty values count as absent.
pub fn parse_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    let pairs = identity_shared::http::fields::read_pairs(raw).map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The authorization request could not be read.",
        )
    })?;
    Ok(pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect())
}

fn untrusted_page(why: Untrusted) -> Refusal {
    let (title, message) = match why {
        Untrusted::NoClient => (
            "Invalid request",
            "The authorization request does not name a client (client_id).",
        ),
        Untrusted::RepeatedClient => (
            "Invalid request",
            "The authorization request names client_id more than once.",
        ),
        Untrusted::UnknownClient => (
            "Unknown application",
            "The application that sent you here is not registered with this service.",
        ),
        Untrusted::UnregisteredRedirectUri => (
            "Invalid redirect URI",
            "The redirect URI in this request is not registered for the application, so you were not sent back to it.",
        ),
        Untrusted::NoRedirectUri => (
            "Invalid request",
            "The authorization request has no redirect_uri.",
        ),
        Untrusted::RepeatedRedirectUri => (
            "Invalid request",
            "The authorization request names redirect_uri more than once.",
        ),
    };
    Refusal::Page(PageError::new(StatusCode::BAD_REQUEST, title, message))
}

/// Checks the request against the registered client (`identity_core::authorize`, one
/// named check per rule). Store failures are refusals too (an error page): nothing
/// proceeds on a check that could not be made.
pub async fn validate(state: &AppState, pairs: &[(String, String)]) -> Result<Valid, Refusal> {
    let client_id = authorize::check_client_id(pairs).map_err(untrusted_page)?;
    let client = state
        .store
        .client(client_id)
        .await
        .map_err(|e| Refusal::Page(Internal::new("client read", e).page()))?;
    let scopes = client.as_ref().map(OAuthClient::scopes).unwrap_or_default();
    let registered = client.as_ref().map(|c| Registered {
        redirect_uris: &c.redirect_uris,
        scopes: &scopes,
    });
    match authorize::validate(pairs, registered) {
        Ok(request) => Ok(Valid {
            code_challenge: request.code_challenge,
            client: client.ok_or_else(|| untrusted_page(Untrusted::UnknownClient))?,
            redirect_uri: request.redirect_uri,
            scopes: request.scopes,
            state: request.state,
        }),
        Err(Refused::Page(why)) => Err(untrusted_page(why)),
        Err(Refused::Client {
            redirect_uri,
            refusal,
        }) => Err(Refusal::Redirect {
            redirect_uri,
            error: refusal.error.as_str(),
            description: refusal.description,
            state: refusal.state,
            issuer: state.config.base_url.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use identity_shared::http::fields::{One, one};

    #[test]
    fn pairs_keep_repeats_and_drop_empty_values() {
        let p = parse_pairs(b"a=1&a=2&b=").unwrap();
        assert_eq!(p, vec![("a".into(), "1".into()), ("a".into(), "2".into())]);
        assert!(matches!(one(&p, "a"), One::Repeated));
        assert!(matches!(one(&p, "b"), One::Missing));
    }
}
