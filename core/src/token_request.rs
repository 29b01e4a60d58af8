//! A token request (RFC 6749 §4.1.3, §4.4, §6; RFC 8628 §3.4; RFC 7523 §2.1), typed from the
//! form's unique parameters (kanidm's `GrantTypeReq`): each grant type with the parameters
//! it requires, so a handler never reads a map.

use std::collections::HashMap;

use crate::device::GRANT_TYPE as DEVICE_CODE;
use crate::error::OAuthErrorCode;
use crate::scope::Scopes;

/// `grant_type` of the JWT bearer grant (RFC 7523 §2.1).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A token request by grant type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest<'a> {
    AuthorizationCode {
        code: &'a str,
        redirect_uri: &'a str,
        code_verifier: &'a str,
    },
    RefreshToken {
        refresh_token: &'a str,
        scope: Option<Scopes>,
    },
    ClientCredentials {
        scope: Option<Scopes>,
    },
    DeviceCode {
        device_code: &'a str,
    },
    /// The JWT bearer grant; its scope is the client's own vocabulary, kept as sent.
    JwtBearer {
        assertion: &'a str,
        scope: Option<&'a str>,
    },
}

/// Why a form is no token request: the error code and its description.
pub type Malformed = (OAuthErrorCode, String);

fn required<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, Malformed> {
    form.get(name).map(String::as_str).ok_or_else(|| {
        (
            OAuthErrorCode::InvalidRequest,
            format!("{name} is required"),
        )
    })
}

/// The requested scope: a known, non-empty list, or none.
pub fn requested_scopes(form: &HashMap<String, String>) -> Result<Option<Scopes>, Malformed> {
    form.get("scope")
        .map(|s| {
            Scopes::parse_non_empty(s).map_err(|e| (OAuthErrorCode::InvalidScope, e.to_string()))
        })
        .transpose()
}

impl<'a> TokenRequest<'a> {
    /// The request a form (its parameters unique) makes; `grant_type` first.
    pub fn parse(form: &'a HashMap<String, String>) -> Result<Self, Malformed> {
        Ok(match required(form, "grant_type")? {
            "authorization_code" => TokenRequest::AuthorizationCode {
                code: required(form, "code")?,
                redirect_uri: required(form, "redirect_uri")?,
                code_verifier: required(form, "code_verifier")?,
            },
            "refresh_token" => TokenRequest::RefreshToken {
                refresh_token: required(form, "refresh_token")?,
                scope: requested_scopes(form)?,
            },
            "client_credentials" => TokenRequest::ClientCredentials {
                scope: requested_scopes(form)?,
            },
            DEVICE_CODE => TokenRequest::DeviceCode {
                device_code: required(form, "device_code")?,
            },
            JWT_BEARER => TokenRequest::JwtBearer {
                assertion: required(form, "assertion")?,
                scope: form.get("scope").map(String::as_str),
            },
            _ => {
                return Err((
                    OAuthErrorCode::UnsupportedGrantType,
                    format!(
                        "grant_type must be authorization_code, refresh_token, client_credentials, {DEVICE_CODE} or {JWT_BEARER}"
                    ),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn each_grant_type_requires_its_parameters() {
        let f = form(&[
            ("grant_type", "authorization_code"),
            ("code", "c"),
            ("redirect_uri", "r"),
        ]);
        assert_eq!(
            TokenRequest::parse(&f),
            Err((
                OAuthErrorCode::InvalidRequest,
                "code_verifier is required".into()
            ))
        );
        let f = form(&[("grant_type", "refresh_token"), ("refresh_token", "t")]);
        assert_eq!(
            TokenRequest::parse(&f),
            Ok(TokenRequest::RefreshToken {
                refresh_token: "t",
                scope: None
            })
        );
        let f = form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", "a"),
            ("scope", "x y"),
        ]);
        assert_eq!(
            TokenRequest::parse(&f),
            Ok(TokenRequest::JwtBearer {
                assertion: "a",
                scope: Some("x y")
            })
        );
    }

    #[test]
    fn an_unknown_grant_type_or_scope_is_refused_with_its_own_code() {
        let f = form(&[("grant_type", "password")]);
        assert_eq!(
            TokenRequest::parse(&f).unwrap_err().0,
            OAuthErrorCode::UnsupportedGrantType
        );
        let f = form(&[("grant_type", "client_credentials"), ("scope", "nonsense")]);
        assert_eq!(
            TokenRequest::parse(&f).unwrap_err().0,
            OAuthErrorCode::InvalidScope
        );
        assert_eq!(
            TokenRequest::parse(&form(&[])).unwrap_err().0,
            OAuthErrorCode::InvalidRequest
        );
    }
}
