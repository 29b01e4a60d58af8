//! Client authentication at the token, revocation and introspection endpoints:
//! `client_secret_basic` (RFC 6749 §2.3.1: HTTP Basic with the form-urlencoded id and
//! secret) or `client_secret_post` (`client_id` + `client_secret` in the form), never both;
//! a public client names itself with `client_id` alone (`none`). Secrets are compared in
//! constant time against their stored hash.

use std::collections::HashMap;

use http::HeaderMap;
use identity_shared::AppState;
use identity_shared::http::basic::{self, BasicError};
use identity_shared::http::fields::decode_component;
use identity_shared::http::oauth::OAuthError;
use identity_shared::oauth::{OAuthClient, OAuthClients};
use identity_shared::secret::SecretString;

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Basic,
    Post,
    /// A public client: `client_id` only.
    None,
}

/// Credentials as presented, before they are checked.
#[derive(Debug)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub method: Method,
}

/// `client_secret_basic`: HTTP Basic whose user and password are the form-encoded client id
/// and secret (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, SecretString)>, OAuthError> {
    let bad = || OAuthError::invalid_client("the Authorization header is not valid HTTP Basic");
    let found = basic::credentials(headers).map_err(|e| match e {
        BasicError::Repeated => OAuthError::invalid_request("the Authorization header is repeated"),
        BasicError::OtherScheme => OAuthError::invalid_client(
            "client authentication uses HTTP Basic or the form, not this scheme",
        ),
        BasicError::Malformed => bad(),
    })?;
    let Some((id, secret)) = found else {
        return Ok(None);
    };
    let id = decode_component(&id).ok_or_else(bad)?;
    let secret = SecretString::new(decode_component(secret.expose_secret()).ok_or_else(bad)?);
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Some((id, secret)))
}

/// Takes the client's credentials out of the headers and form (removing `client_id` and
/// `client_secret` from the form), refusing more than one method.
pub fn presented(
    headers: &HeaderMap,
    form: &mut HashMap<String, String>,
) -> Result<Presented, OAuthError> {
    let form_id = form.remove("client_id");
    let form_secret = form.remove("client_secret").map(SecretString::new);
    match basic_credentials(headers)? {
        Some((id, secret)) => {
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "the client authenticated with both HTTP Basic and client_secret; use one method",
                ));
            }
            if form_id.as_deref().is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_client(
                    "client_id does not match the HTTP Basic credentials",
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: Some(secret),
                method: Method::Basic,
            })
        }
        None => {
            let Some(client_id) = form_id else {
                return Err(OAuthError::invalid_client(
                    "client authentication is required",
                ));
            };
            let method = if form_secret.is_some() {
                Method::Post
            } else {
                Method::None
            };
            Ok(Presented {
                client_id,
                secret: form_secret,
                method,
            })
        }
    }
}

/// Checks presented credentials against the registered client (`identity_core::client`).
pub fn check(client: Option<OAuthClient>, p: &Presented) -> Result<OAuthClient, OAuthError> {
    let secret = p.secret.as_ref().map(|s| s.expose_secret());
    let ok =
        identity_core::client::authenticate(client.as_ref().map(OAuthClient::registered), secret);
    match client {
        Some(client) if ok => Ok(client),
        _ => Err(OAuthError::invalid_client("client authentication failed")),
    }
}

/// The authenticated client of a request.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &mut HashMap<String, String>,
) -> Result<OAuthClient, OAuthError> {
    let p = presented(headers, form)?;
    let client = state
        .store
        .client(&p.client_id)
        .await
        .map_err(|e| OAuthError::internal("client read", e))?;
    let client = check(client, &p)?;
    tracing::debug!(client_id = %client.client_id, method = ?p.method, "client authenticated");
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use http::header;
    use identity_shared::http::oauth::OAuthErrorCode;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        h.insert(header::AUTHORIZATION, format!("Basic {v}").parse().unwrap());
        h
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let p = presented(&basic("my%20client", "s%3Acret+x"), &mut form(&[])).unwrap();
        assert_eq!(p.client_id, "my client");
        assert_eq!(p.secret.unwrap().expose_secret(), "s:cret x");
        assert_eq!(p.method, Method::Basic);
    }

    #[test]
    fn client_authenticating_two_ways_is_refused() {
        let e = presented(
            &basic("c", "s"),
            &mut form(&[("client_id", "c"), ("client_secret", "s")]),
        )
        .unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
        let e = presented(&basic("c", "s"), &mut form(&[("client_id", "d")])).unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidClient);
        assert!(presented(&basic("c", "s"), &mut form(&[("client_id", "c")])).is_ok());
    }

    #[test]
    fn no_credentials_or_malformed_basic_is_invalid_client() {
        assert_eq!(
            presented(&HeaderMap::new(), &mut form(&[]))
                .unwrap_err()
                .code,
            OAuthErrorCode::InvalidClient
        );
        for bad in ["Basic !!!", "Basic", "Bearer abc", "Basic Zm9v"] {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, bad.parse().unwrap());
            assert_eq!(
                presented(&h, &mut form(&[])).unwrap_err().code,
                OAuthErrorCode::InvalidClient,
                "{bad}"
            );
        }
    }

    #[test]
    fn form_credentials_are_removed_from_the_form() {
        let mut f = form(&[("client_id", "c"), ("client_secret", "s"), ("code", "x")]);
        let p = presented(&HeaderMap::new(), &mut f).unwrap();
        assert_eq!(p.method, Method::Post);
        assert!(!f.contains_key("client_secret") && !f.contains_key("client_id"));
        let p = presented(&HeaderMap::new(), &mut form(&[("client_id", "c")])).unwrap();
        assert_eq!(p.method, Method::None);
    }
}
