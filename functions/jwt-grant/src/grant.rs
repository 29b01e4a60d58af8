//! The JWT bearer grant (RFC 7523 §2.1), checked in fosite's order: form → `alg` →
//! `iss` names a client → signature by one of its certificates → `aud` → `exp`/`nbf`/`iat`
//! → `jti` consumed once → `sub` is a user pre-authorized for the client → scope. Every
//! attempt, good or bad, is written to the login history; a success whose history record
//! cannot be written is refused (no token without its audit record).
//!
//! The token route, `POST /apps/{app}/authorizations` and `identity admin authorization add`
//! run [`exchange`].

use std::collections::HashMap;
use std::net::IpAddr;

use identity_core::jwt;
use identity_core::token_request::TokenRequest;
use identity_shared::AppState;
use identity_shared::accounts::{AccountError, Accounts, Email};
use identity_shared::crypto;
use identity_shared::http::oauth::{OAuthError, OAuthErrorCode};
use identity_shared::jwt_clients::{JwtClient, JwtClients};
use identity_shared::login_history::{LoginAttempt, LoginHistory, Outcome, sanitize};
use identity_shared::oauth::Grants;
use identity_shared::secret::SecretString;
use identity_shared::store::{Load, SingleUse, StoreError};
use identity_shared::throttle::{Action, Attempt, Throttling, Verdict};
use identity_shared::tokens::{self, AccessClaims};

use crate::assertion;

/// The route of the grant.
pub const TOKEN_PATH: &str = "/oauth/jwt/token";
/// `grant_type` of RFC 7523 §2.1.
pub use identity_core::token_request::JWT_BEARER;

/// Where an attempt came from, for the login history and throttling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source_ip: Option<IpAddr>,
    pub via: Via,
    /// The app the token is for (`identity admin authorization add`): the token's audience
    /// is then that app alone.
    pub app_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `POST /oauth/jwt/token`.
    TokenEndpoint,
    /// `identity admin authorization add`.
    Admin,
    /// `POST /apps/{app}/authorizations` (`identity authorizations jwt add`).
    Cli,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::TokenEndpoint => "token_endpoint",
            Via::Admin => "admin",
            Via::Cli => "cli",
        }
    }
}

/// A successful grant. `Debug` prints the token as `[redacted]` (it is a `SecretString`).
#[derive(Debug)]
pub struct Granted {
    pub access_token: SecretString,
    pub expires_in: i64,
    pub expires_at: i64,
    pub issued_at: i64,
    pub scope: String,
    pub instance_url: String,
    pub client_id: String,
    pub account_id: String,
    pub email: String,
}

impl Granted {
    /// The token response: `{"access_token","token_type","expires_in","scope","instance_url"}`.
    pub fn response_json(&self) -> serde_json::Value {
        serde_json::json!({
            "access_token": self.access_token.expose_secret(),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
            "instance_url": self.instance_url,
        })
    }
}

/// What the checks learned before they stopped, for the history record.
#[derive(Debug, Default)]
struct Seen {
    client_id: Option<String>,
    client_known: bool,
    verified: bool,
    subject: Option<String>,
    account_id: Option<String>,
}

/// The audiences an assertion may name: the base URL (also with a trailing slash, the
/// same URL) and the token URL.
pub fn audiences(state: &AppState) -> Vec<String> {
    let base = &state.config.base_url;
    vec![
        base.clone(),
        format!("{base}/"),
        state.config.url(TOKEN_PATH),
    ]
}

/// The facts of [`jwt::grant`]: the account `sub` names, whether the client
/// pre-authorized it, its grant for the client; and whether the `jti` was used, read only
/// after a conflict (the write's condition judges it first).
async fn load(
    state: &AppState,
    client: &JwtClient,
    sub: &str,
    jti_key: Option<&str>,
    when: Load,
) -> Result<jwt::Loaded, StoreError> {
    let mut loaded = jwt::Loaded::default();
    if when == Load::AfterConflict
        && let Some(key) = jti_key
    {
        loaded.jti_used = Some(state.store.was_used(jwt::JTI_KIND, key).await?);
    }
    let Ok(email) = Email::parse(sub) else {
        return Ok(loaded);
    };
    loaded.sub_is_email = true;
    let Some(account) = state
        .store
        .account_by_email(&email)
        .await
        .map_err(AccountError::into_store_error)?
    else {
        return Ok(loaded);
    };
    loaded.pre_authorized = client.is_pre_authorized(&account.id);
    loaded.held = Some(
        state
            .store
            .held_grant(&account.id, &client.client_id)
            .await?,
    );
    loaded.account = Some(account);
    Ok(loaded)
}

/// A refusal as the grant's error response.
fn refusal(refused: jwt::Refused, allowed: &[String]) -> OAuthError {
    match refused {
        jwt::Refused::JtiReused => OAuthError::invalid_grant(
            "the assertion's jti was already used; every assertion must have a new jti",
        ),
        jwt::Refused::SubNotEmail => {
            OAuthError::invalid_grant("sub must be the email of the user to act for")
        }
        jwt::Refused::User(r) => OAuthError::invalid_grant(r.description()),
        jwt::Refused::ScopeOutside(outside) => OAuthError::new(
            OAuthErrorCode::InvalidScope,
            format!(
                "scope {:?} is not among this client's scopes ({})",
                sanitize(&outside),
                allowed.join(" ")
            ),
        ),
    }
}

/// Runs the grant on a parsed form (or the form's parse error) and records the attempt.
/// Over HTTP (the token endpoint and the named-authorization route), an address with too
/// many failures is refused before any check (a valid assertion too), and every failure
/// counts ([`Action::JwtGrant`]); the operator's command is not throttled.
pub async fn exchange(
    state: &AppState,
    form: Result<HashMap<String, String>, OAuthError>,
    origin: &Origin,
) -> Result<Granted, OAuthError> {
    let throttled = origin.via != Via::Admin;
    let limits = &state.config.limits;
    let who = Attempt {
        subject: None,
        address: origin.source_ip,
        device: None,
    };
    if throttled {
        let check = state
            .store
            .throttle_check(Action::JwtGrant, limits, &who)
            .await
            .map_err(|e| OAuthError::internal("throttle", e))?;
        // A surge here only raises the alarm: a CI system has no page to prove work on.
        if let Verdict::Locked(locked) = check {
            return Err(OAuthError::throttled(locked));
        }
    }
    let mut seen = Seen::default();
    let result = match form {
        Ok(form) => decide(state, &form, origin, &mut seen).await,
        Err(e) => Err(e),
    };
    let result = match result {
        Err(refused) if throttled => match state
            .store
            .throttle_count(Action::JwtGrant, limits, &who)
            .await
        {
            Ok(_) => Err(refused),
            Err(e) => Err(OAuthError::internal("throttle", e)),
        },
        other => other,
    };
    let now = state.now();
    let attempt = LoginAttempt {
        at: now,
        client_id: seen.client_id,
        client_known: seen.client_known,
        verified: seen.verified,
        subject: seen.subject,
        account_id: seen.account_id,
        outcome: if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        error: result.as_ref().err().map(|e| e.code.as_str().to_string()),
        reason: match &result {
            Ok(_) => "access token issued".to_string(),
            Err(e) => e.description.clone(),
        },
        source_ip: origin.source_ip.map(|ip| ip.to_string()),
        via: origin.via.as_str().to_string(),
        scope: result.as_ref().ok().map(|g| g.scope.clone()),
    };
    let recorded = state.store.record_attempt(&attempt).await;
    tracing::info!(
        outcome = attempt.outcome.as_str(),
        error = attempt.error.as_deref().unwrap_or(""),
        client_known = attempt.client_known,
        via = attempt.via,
        "jwt bearer grant"
    );
    match (result, recorded) {
        (Ok(granted), Ok(())) => Ok(granted),
        (Ok(_), Err(e)) => Err(OAuthError::internal("login history", e)),
        (Err(refused), Err(e)) => {
            tracing::error!(detail = %e, "login history: a refused attempt could not be recorded");
            Err(refused)
        }
        (Err(refused), Ok(())) => Err(refused),
    }
}

/// The form's assertion, parsed, its client found and its signature and times checked
/// (fosite's order); what the checks learned is noted in `seen` as they go.
async fn verified<'f>(
    state: &AppState,
    form: &'f HashMap<String, String>,
    seen: &mut Seen,
) -> Result<(assertion::Assertion, JwtClient, Option<&'f str>), OAuthError> {
    let only_this = || {
        OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            format!("this endpoint takes grant_type={JWT_BEARER} only"),
        )
    };
    let (assertion_text, requested_scope) =
        match TokenRequest::parse(form).map_err(|(code, description)| match code {
            OAuthErrorCode::UnsupportedGrantType => only_this(),
            code => OAuthError::new(code, description),
        })? {
            TokenRequest::JwtBearer { assertion, scope } => (assertion, scope),
            _ => return Err(only_this()),
        };
    let assertion = assertion::parse(assertion_text)?;
    let claims = &assertion.claims;
    seen.client_id = Some(sanitize(&claims.iss));
    seen.subject = Some(sanitize(&claims.sub));
    let client = state
        .store
        .jwt_client(&claims.iss)
        .await
        .map_err(|e| OAuthError::internal("jwt client read", e))?
        .ok_or_else(|| {
            OAuthError::invalid_client("iss is not the client_id of a registered JWT client")
        })?;
    seen.client_known = true;
    let now = state.now();
    assertion.verify_signature(&client.certificates, now)?;
    seen.verified = true;
    claims
        .check(&audiences(state), now)
        .map_err(OAuthError::invalid_grant)?;
    Ok((assertion, client, requested_scope))
}

async fn decide(
    state: &AppState,
    form: &HashMap<String, String>,
    origin: &Origin,
    seen: &mut Seen,
) -> Result<Granted, OAuthError> {
    let (assertion, client, requested_scope) = verified(state, form, seen).await?;
    let claims = &assertion.claims;
    let now = state.now();
    let jti_key = claims
        .jti
        .as_ref()
        .map(|jti| crypto::sha256_hex(format!("{}\n{jti}", client.client_id).as_bytes()));
    let exp = claims.exp.expect("checked: exp is present");
    let fresh_gid = crypto::b64url(&crypto::random_bytes(16));
    let request = jwt::Request {
        client_id: &client.client_id,
        client_scopes: &client.scopes,
        jti: jti_key.as_deref().map(|k| (k, exp)),
        requested_scope,
        fresh_gid: &fresh_gid,
    };
    let decided = state
        .store
        .run(
            |when| load(state, &client, &claims.sub, jti_key.as_deref(), when),
            |loaded, now| jwt::grant(request, loaded, now),
        )
        .await
        .map_err(|e| OAuthError::internal("jwt grant", e))?;
    seen.account_id = decided.account_id.map(|id| id.to_string());
    let jwt::Granted {
        account,
        grant,
        scope,
    } = decided
        .result
        .map_err(|refused| refusal(refused, &client.scopes))?;
    let keys = state
        .secrets
        .signing_keys()
        .await
        .map_err(|e| OAuthError::internal("signing keys", e))?;
    let base = &state.config.base_url;
    let mut access = AccessClaims::new(
        base,
        &account.id,
        &client.client_id,
        &scope,
        Some(&grant.gid),
        now,
    );
    if let Some(app) = &origin.app_id {
        access = access.for_app(app);
    }
    let token =
        tokens::issue(&keys, &access).map_err(|e| OAuthError::internal("token signing", e))?;
    Ok(Granted {
        access_token: token,
        expires_in: access.exp - now,
        expires_at: access.exp,
        issued_at: now,
        scope,
        instance_url: base.clone(),
        client_id: client.client_id,
        account_id: account.id.to_string(),
        email: account.email,
    })
}
