//! Making a named authorization: run the JWT bearer grant on an assertion and keep the
//! token for the app under a developer name and an alias. `identity admin authorization add`
//! (the operator, against the store) and `POST /apps/{app}/authorizations` (a developer or
//! CI through `identity authorizations jwt add`, which signed the assertion locally) both
//! come here.

use std::collections::HashMap;

use identity_shared::AppState;
use identity_shared::authorizations::{
    self, AuthorizationError, NamedAuthorization, NamedAuthorizations, NewAuthorization, Sealing,
    TokenSeal,
};
use identity_shared::http::oauth::OAuthError;

use crate::grant::{self, Origin};

/// Why no authorization was made.
#[derive(Debug)]
pub enum NotMade {
    /// The name or alias is not acceptable, or the alias is another authorization's.
    Invalid(AuthorizationError),
    /// The grant refused the assertion (its own error: code and description).
    Refused(OAuthError),
    /// Our failure.
    Internal(String),
}

impl std::fmt::Display for NotMade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotMade::Invalid(e) => write!(f, "{e}"),
            NotMade::Refused(e) => write!(
                f,
                "the JWT grant was refused ({}): {}",
                e.code.as_str(),
                e.description
            ),
            NotMade::Internal(e) => write!(f, "{e}"),
        }
    }
}

/// The developer name and alias, checked (the alias defaults to `applink:NAME`).
pub fn names(name: &str, alias: Option<&str>) -> Result<(String, String), NotMade> {
    let alias = alias
        .map(str::to_string)
        .unwrap_or_else(|| authorizations::default_alias(name));
    if !authorizations::valid_developer_name(name) {
        return Err(NotMade::Invalid(AuthorizationError::InvalidName));
    }
    if !authorizations::valid_alias(&alias) {
        return Err(NotMade::Invalid(AuthorizationError::InvalidAlias));
    }
    Ok((name.to_string(), alias))
}

/// Runs the grant on `assertion` (with `scope`, when asked) for the app `origin.app_id`, and
/// saves the authorization it yields. The names are checked before the grant runs, so a
/// bad name spends no `jti`.
pub async fn add(
    state: &AppState,
    name: &str,
    alias: Option<&str>,
    assertion: &str,
    scope: Option<&str>,
    origin: &Origin,
) -> Result<NamedAuthorization, NotMade> {
    let (name, alias) = names(name, alias)?;
    let app_id = origin
        .app_id
        .clone()
        .ok_or_else(|| NotMade::Internal("a named authorization needs its app".into()))?;
    let mut form = HashMap::from([
        ("grant_type".to_string(), grant::JWT_BEARER.to_string()),
        ("assertion".to_string(), assertion.to_string()),
    ]);
    if let Some(s) = scope {
        form.insert("scope".into(), s.to_string());
    }
    let granted = grant::exchange(state, Ok(form), origin)
        .await
        .map_err(NotMade::Refused)?;
    let keys = state
        .secrets
        .signing_keys()
        .await
        .map_err(|e| NotMade::Internal(e.to_string()))?;
    let seal = TokenSeal::from_signing_keys(&keys).map_err(|e| NotMade::Internal(e.to_string()))?;
    let record = NamedAuthorization::new(
        &NewAuthorization {
            developer_name: &name,
            alias: &alias,
            app_id: &app_id,
            client_id: &granted.client_id,
            account_id: &granted.account_id,
            email: &granted.email,
            scope: &granted.scope,
            instance_url: &granted.instance_url,
            access_token: &granted.access_token,
            issued_at: granted.issued_at,
            expires_at: granted.expires_at,
        },
        &seal,
        state.now(),
    );
    state
        .store
        .save_authorization(&record)
        .await
        .map_err(|e| match e {
            AuthorizationError::AliasTaken(_) => NotMade::Invalid(e),
            other => NotMade::Internal(other.to_string()),
        })
}
