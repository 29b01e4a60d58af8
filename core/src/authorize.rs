//! The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636) as named checks, one per
//! rule (node-oidc-provider's `check_*` actions), run in order by [`validate`]. Until the
//! client and its redirect URI are known good, a refusal is [`Untrusted`] (an error page:
//! redirecting would make us an open redirector); after that it is [`ToClient`], an
//! `OAuthErrorCode` sent back on the client's redirect URI with `state`.

use crate::error::OAuthErrorCode;
use crate::ids::RedirectUri;
use crate::pkce;
use crate::scope::Scopes;

/// The longest `state` echoed back (it travels in a URL).
pub const MAX_STATE: usize = 1024;

/// One parameter of a list of pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum One<'a> {
    Missing,
    Repeated,
    Value(&'a str),
}

/// The parameter `name` of `pairs`: missing, repeated, or its one value.
pub fn one<'a>(pairs: &'a [(String, String)], name: &str) -> One<'a> {
    let mut found = pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    match (found.next(), found.next()) {
        (None, _) => One::Missing,
        (Some(_), Some(_)) => One::Repeated,
        (Some(v), None) => One::Value(v),
    }
}

/// Why a request is refused before its client and redirect URI can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    NoClient,
    RepeatedClient,
    UnknownClient,
    NoRedirectUri,
    RepeatedRedirectUri,
    UnregisteredRedirectUri,
}

/// A refusal the client's redirect URI receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToClient {
    pub error: OAuthErrorCode,
    pub description: String,
    /// The request's `state`, once it was read.
    pub state: Option<String>,
}

/// Why a request is refused, and where the answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Page(Untrusted),
    Client {
        redirect_uri: String,
        refusal: ToClient,
    },
}

/// What the client registered, as the checks need it.
#[derive(Debug, Clone, Copy)]
pub struct Registered<'a> {
    pub redirect_uris: &'a [RedirectUri],
    pub scopes: &'a Scopes,
}

/// A request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub code_challenge: String,
}

/// `client_id`: exactly once.
pub fn check_client_id(pairs: &[(String, String)]) -> Result<&str, Untrusted> {
    match one(pairs, "client_id") {
        One::Value(v) => Ok(v),
        One::Missing => Err(Untrusted::NoClient),
        One::Repeated => Err(Untrusted::RepeatedClient),
    }
}

/// `redirect_uri`: exactly once, and registered for the client (exact string match).
pub fn check_redirect_uri(
    pairs: &[(String, String)],
    registered: &Registered<'_>,
) -> Result<String, Untrusted> {
    match one(pairs, "redirect_uri") {
        One::Value(v) if registered.redirect_uris.iter().any(|r| r.as_str() == v) => {
            Ok(v.to_string())
        }
        One::Value(_) => Err(Untrusted::UnregisteredRedirectUri),
        One::Missing => Err(Untrusted::NoRedirectUri),
        One::Repeated => Err(Untrusted::RepeatedRedirectUri),
    }
}

type Check<T> = Result<T, (OAuthErrorCode, String)>;

fn invalid(description: impl Into<String>) -> (OAuthErrorCode, String) {
    (OAuthErrorCode::InvalidRequest, description.into())
}

/// `state`: at most once, at most [`MAX_STATE`] characters.
pub fn check_state(pairs: &[(String, String)]) -> Check<Option<String>> {
    match one(pairs, "state") {
        One::Value(v) if v.len() <= MAX_STATE => Ok(Some(v.to_string())),
        One::Value(_) => Err(invalid(format!(
            "state is longer than {MAX_STATE} characters"
        ))),
        One::Missing => Ok(None),
        One::Repeated => Err(invalid("state is repeated")),
    }
}

/// No parameter appears twice (RFC 6749 §3.1).
pub fn check_unique(pairs: &[(String, String)]) -> Check<()> {
    let mut seen = std::collections::HashSet::new();
    match pairs.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        Some((k, _)) => Err(invalid(format!("parameter {k} is repeated"))),
        None => Ok(()),
    }
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    match one(pairs, name) {
        One::Value(v) => Some(v),
        _ => None,
    }
}

/// `response_type=code`, the only one supported.
pub fn check_response_type(pairs: &[(String, String)]) -> Check<()> {
    match get(pairs, "response_type") {
        Some("code") => Ok(()),
        Some(_) => Err((
            OAuthErrorCode::UnsupportedResponseType,
            "only response_type=code is supported".into(),
        )),
        None => Err(invalid("response_type is required")),
    }
}

/// PKCE: an `S256` challenge is required (plain is not accepted).
pub fn check_pkce(pairs: &[(String, String)]) -> Check<String> {
    let Some(challenge) = get(pairs, "code_challenge") else {
        return Err(invalid("code_challenge is required (PKCE with S256)"));
    };
    if get(pairs, "code_challenge_method") != Some(pkce::S256) {
        return Err(invalid(
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    if !pkce::valid_challenge(challenge) {
        return Err(invalid("code_challenge is not an S256 challenge"));
    }
    Ok(challenge.to_string())
}

/// `scope`: known scopes, all registered for the client; none asked: all it registered.
pub fn check_scope(pairs: &[(String, String)], allowed: &Scopes) -> Check<Scopes> {
    let scopes = match get(pairs, "scope") {
        None => allowed.clone(),
        Some(s) => {
            Scopes::parse_non_empty(s).map_err(|e| (OAuthErrorCode::InvalidScope, e.to_string()))?
        }
    };
    if !allowed.contains_all(&scopes) {
        return Err((
            OAuthErrorCode::InvalidScope,
            "the requested scope is not registered for this client".into(),
        ));
    }
    Ok(scopes)
}

/// Every check, in order, against the client `client_id` names (`None`: none registered).
pub fn validate(
    pairs: &[(String, String)],
    registered: Option<Registered<'_>>,
) -> Result<Request, Refused> {
    check_client_id(pairs).map_err(Refused::Page)?;
    let registered = registered.ok_or(Refused::Page(Untrusted::UnknownClient))?;
    let redirect_uri = check_redirect_uri(pairs, &registered).map_err(Refused::Page)?;
    // From here on, the answer goes back to the client.
    let to_client = |(error, description), state: Option<String>| Refused::Client {
        redirect_uri: redirect_uri.clone(),
        refusal: ToClient {
            error,
            description,
            state,
        },
    };
    let state = check_state(pairs).map_err(|e| to_client(e, None))?;
    let with_state = |e| to_client(e, state.clone());
    check_unique(pairs).map_err(with_state)?;
    check_response_type(pairs).map_err(with_state)?;
    let code_challenge = check_pkce(pairs).map_err(with_state)?;
    let scopes = check_scope(pairs, registered.scopes).map_err(with_state)?;
    Ok(Request {
        redirect_uri,
        scopes,
        state,
        code_challenge,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const CB: &str = "https://app.example.com/cb";

    fn pairs(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("client_id", "c"),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "s1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            p.retain(|(n, _)| n != k);
            if !v.is_empty() {
                p.push((k.to_string(), v.to_string()));
            }
        }
        p
    }

    fn run(extra: &[(&str, &str)]) -> Result<Request, Refused> {
        let uris = vec![RedirectUri::new(CB)];
        let scopes = Scopes::parse("identity read").unwrap();
        validate(
            &pairs(extra),
            Some(Registered {
                redirect_uris: &uris,
                scopes: &scopes,
            }),
        )
    }

    fn to_client(r: Result<Request, Refused>) -> (OAuthErrorCode, Option<String>) {
        match r {
            Err(Refused::Client { refusal, .. }) => (refusal.error, refusal.state),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_with_code_pkce_and_registered_scopes_passes_and_asks_for_all_by_default() {
        let r = run(&[]).unwrap();
        assert_eq!(r.scopes.to_string(), "identity read");
        assert_eq!(r.state.as_deref(), Some("s1"));
    }

    #[test]
    fn an_untrusted_client_or_redirect_uri_gets_a_page_never_a_redirect() {
        assert_eq!(
            run(&[("client_id", "")]).unwrap_err(),
            Refused::Page(Untrusted::NoClient)
        );
        assert_eq!(
            run(&[("redirect_uri", "https://app.example.com/cb/")]).unwrap_err(),
            Refused::Page(Untrusted::UnregisteredRedirectUri)
        );
        assert_eq!(
            validate(&pairs(&[]), None).unwrap_err(),
            Refused::Page(Untrusted::UnknownClient)
        );
        let mut twice = pairs(&[]);
        twice.push(("client_id".into(), "c".into()));
        assert_eq!(check_client_id(&twice), Err(Untrusted::RepeatedClient));
    }

    #[test]
    fn the_response_type_must_be_code() {
        assert_eq!(
            to_client(run(&[("response_type", "token")])),
            (OAuthErrorCode::UnsupportedResponseType, Some("s1".into()))
        );
        assert_eq!(
            to_client(run(&[("response_type", "")])).0,
            OAuthErrorCode::InvalidRequest
        );
    }

    #[test]
    fn pkce_s256_is_required_and_plain_refused() {
        for extra in [
            [("code_challenge", ""), ("code_challenge_method", "S256")],
            [
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
            [
                ("code_challenge", "short"),
                ("code_challenge_method", "S256"),
            ],
        ] {
            assert_eq!(to_client(run(&extra)).0, OAuthErrorCode::InvalidRequest);
        }
    }

    #[test]
    fn scopes_must_be_known_and_registered_for_the_client() {
        for scope in ["write", "nonsense", " "] {
            assert_eq!(
                to_client(run(&[("scope", scope)])).0,
                OAuthErrorCode::InvalidScope,
                "{scope:?}"
            );
        }
    }

    #[test]
    fn a_repeated_parameter_or_an_overlong_state_is_an_invalid_request() {
        let mut p = pairs(&[]);
        p.push(("scope".into(), "read".into()));
        p.push(("scope".into(), "read".into()));
        assert_eq!(
            check_unique(&p).unwrap_err().0,
            OAuthErrorCode::InvalidRequest
        );
        let long = "x".repeat(MAX_STATE + 1);
        assert_eq!(
            to_client(run(&[("state", &long)])),
            (OAuthErrorCode::InvalidRequest, None),
            "an overlong state is not echoed"
        );
    }
}
