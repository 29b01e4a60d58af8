//! The authorization request (RFC 6749 §4.1.1 with PKCE): parsed and judged before anyone
//! is asked to sign in. Until the client and its redirect URI are known good, a refusal is
//! an error page (redirecting would make us an open redirector); after that, the refusal
//! goes back to the client as `error`, `error_description` and `state` on its redirect URI.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use identity_shared::AppState;
use identity_shared::http::page::redirect;
use identity_shared::http::{Internal, PageError};
use identity_shared::oauth::{OAuthClient, OAuthClients, Scopes, pkce};

/// The longest `state` echoed back (it travels in a URL).
const MAX_STATE: usize = 1024;

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

use identity_shared::http::fields::{One, one};

fn bad_page(title: &str, message: &str) -> Refusal {
    Refusal::Page(PageError::new(StatusCode::BAD_REQUEST, title, message))
}

/// Checks the request against the registered client. Store failures are refusals too
/// (an error page): nothing proceeds on a check that could not be made.
pub async fn validate(state: &AppState, pairs: &[(String, String)]) -> Result<Valid, Refusal> {
    let client_id = match one(pairs, "client_id") {
        One::Value(v) => v,
        One::Missing => {
            return Err(bad_page(
                "Invalid request",
                "The authorization request does not name a client (client_id).",
            ));
        }
        One::Repeated => {
            return Err(bad_page(
                "Invalid request",
                "The authorization request names client_id more than once.",
            ));
        }
    };
    let client = state
        .store
        .client(client_id)
        .await
        .map_err(|e| Refusal::Page(Internal::new("client read", e).page()))?
        .ok_or_else(|| {
            bad_page(
                "Unknown application",
                "The application that sent you here is not registered with this service.",
            )
        })?;
    let redirect_uri = match one(pairs, "redirect_uri") {
        One::Value(v) if client.has_redirect_uri(v) => v.to_string(),
        One::Value(_) => {
            return Err(bad_page(
                "Invalid redirect URI",
                "The redirect URI in this request is not registered for the application, so you were not sent back to it.",
            ));
        }
        One::Missing => {
            return Err(bad_page(
                "Invalid request",
                "The authorization request has no redirect_uri.",
            ));
        }
        One::Repeated => {
            return Err(bad_page(
                "Invalid request",
                "The authorization request names redirect_uri more than once.",
            ));
        }
    };
    // From here on, the answer goes back to the client.
    let state_issuer = state.config.base_url.clone();
    let refuse = |error: &'static str, description: String, state: Option<String>| {
        Err(Refusal::Redirect {
            redirect_uri: redirect_uri.clone(),
            error,
            description,
            state,
            issuer: state_issuer.clone(),
        })
    };
    let req_state = match one(pairs, "state") {
        One::Value(v) if v.len() <= MAX_STATE => Some(v.to_string()),
        One::Value(_) => {
            return refuse(
                "invalid_request",
                format!("state is longer than {MAX_STATE} characters"),
                None,
            );
        }
        One::Missing => None,
        One::Repeated => return refuse("invalid_request", "state is repeated".into(), None),
    };
    let mut seen = std::collections::HashSet::new();
    if let Some((k, _)) = pairs.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        return refuse(
            "invalid_request",
            format!("parameter {k} is repeated"),
            req_state,
        );
    }
    let get = |name: &str| match one(pairs, name) {
        One::Value(v) => Some(v),
        _ => None,
    };
    match get("response_type") {
        Some("code") => {}
        Some(_) => {
            return refuse(
                "unsupported_response_type",
                "only response_type=code is supported".into(),
                req_state,
            );
        }
        None => {
            return refuse(
                "invalid_request",
                "response_type is required".into(),
                req_state,
            );
        }
    }
    let Some(challenge) = get("code_challenge") else {
        return refuse(
            "invalid_request",
            "code_challenge is required (PKCE with S256)".into(),
            req_state,
        );
    };
    if get("code_challenge_method") != Some(pkce::S256) {
        return refuse(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)".into(),
            req_state,
        );
    }
    if !pkce::valid_challenge(challenge) {
        return refuse(
            "invalid_request",
            "code_challenge is not an S256 challenge".into(),
            req_state,
        );
    }
    let allowed = client.scopes();
    let scopes = match get("scope") {
        None => allowed.clone(),
        Some(s) => match Scopes::parse_non_empty(s) {
            Ok(s) => s,
            Err(e) => return refuse("invalid_scope", e.to_string(), req_state),
        },
    };
    if !allowed.contains_all(&scopes) {
        return refuse(
            "invalid_scope",
            "the requested scope is not registered for this client".into(),
            req_state,
        );
    }
    Ok(Valid {
        code_challenge: challenge.to_string(),
        client,
        redirect_uri,
        scopes,
        state: req_state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_keep_repeats_and_drop_empty_values() {
        let p = parse_pairs(b"a=1&a=2&b=").unwrap();
        assert_eq!(p, vec![("a".into(), "1".into()), ("a".into(), "2".into())]);
        assert!(matches!(one(&p, "a"), One::Repeated));
        assert!(matches!(one(&p, "b"), One::Missing));
    }
}
