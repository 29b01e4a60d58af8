//! HTTP plumbing shared by every function: state, errors, pages, request ids, the
//! signed-in user. Only this module and the function crates know axum and lambda_http.

pub mod basic;
pub mod bearer;
pub mod error;
pub mod fields;
pub mod form;
pub mod impersonation;
pub mod known_browser;
pub mod limits;
pub mod oauth;
pub mod page;
pub mod plumbing;
pub mod work;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;

use crate::accounts::{Account, Accounts};
use crate::clock::Clock;
use crate::config::{Config, SecretsSpec, StoreSpec};
#[cfg(feature = "embedded")]
use crate::secrets::embedded::EmbeddedSecrets;
use crate::secrets::secretsmanager::SecretsManager;
use crate::secrets::{SecretKind, SecretSource, Secrets};
use crate::session::{self, Session, SessionId, Sessions};
use crate::store::Store;
use crate::throttle::{Action, Attempt, Locked, Throttling};
pub use error::{Answer, Internal, JsonError, PageError};

/// What every handler gets: configuration, the store, the keys. Built once per process
/// (once per Lambda cold start).
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub secrets: Arc<Secrets>,
    /// Where outbox messages go once written: the log (the default) or a mail service.
    pub mail: Arc<dyn crate::outbox::EmailSender>,
    /// The AWS SDK configuration the store and secrets clients were made from, when a
    /// backend needed one: further clients (mail) share its HTTP client and credentials.
    pub aws: Option<aws_config::SdkConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
}

impl AppState {
    /// Builds the state from configuration. AWS SDK clients are made only when a backend
    /// needs them, from the SDK's usual environment (`AWS_ENDPOINT_URL`, region, …).
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        let needs_aws = matches!(config.store, StoreSpec::DynamoDb { .. })
            || matches!(config.secrets, SecretsSpec::SecretsManager { .. });
        let sdk = if needs_aws {
            Some(crate::aws::sdk_config().await)
        } else {
            None
        };
        let store = Store::open(&config.store, clock, sdk.as_ref()).await?;
        let source: Arc<dyn SecretSource> = match &config.secrets {
            #[cfg(feature = "embedded")]
            SecretsSpec::Embedded => Arc::new(EmbeddedSecrets::new(store.clone())),
            #[cfg(not(feature = "embedded"))]
            SecretsSpec::Embedded => {
                return Err(crate::secrets::SecretsError::Unavailable(
                    "this build has no embedded secrets (a Lambda bootstrap): IDENTITY_SECRETS must be secretsmanager:PREFIX".into(),
                )
                .into());
            }
            SecretsSpec::SecretsManager { prefix } => {
                let sdk = sdk.as_ref().expect("loaded above for secretsmanager");
                Arc::new(SecretsManager::new(
                    aws_sdk_secretsmanager::Client::new(sdk),
                    prefix.clone(),
                ))
            }
        };
        let secrets = Arc::new(Secrets::new(source, config.secrets_refresh));
        Ok(Self {
            config: Arc::new(config),
            store,
            secrets,
            mail: Arc::new(crate::outbox::LoggingSender),
            aws: sdk,
        })
    }

    /// The same state, handing outbox messages to `mail`.
    pub fn with_mail(self, mail: Arc<dyn crate::outbox::EmailSender>) -> Self {
        Self { mail, ..self }
    }

    /// The state a Lambda builds during its init phase: configuration from the
    /// environment, clients built, and the keys it will use fetched now.
    pub async fn for_lambda(warm: &[SecretKind]) -> Result<Self, StartupError> {
        let state = Self::build(Config::from_env()?, crate::clock::system()).await?;
        state.secrets.warm(warm).await?;
        Ok(state)
    }

    /// Opens the store's connection during a Lambda's init phase (one read of a key that
    /// is never written), so the first request does not pay for the connection, the TLS
    /// handshake and the SDK's first-call set-up. `table` is one the function reads anyway
    /// (its IAM policy allows `GetItem` there). An error is a start-up failure.
    pub async fn warm_store(&self, table: crate::store::Table) -> Result<(), StartupError> {
        self.store.get_item(table, "warm#", "warm").await?;
        Ok(())
    }

    pub fn now(&self) -> i64 {
        self.store.now()
    }

    /// The signed-in user of a request, if its session cookie opens, the session record
    /// lives, and the account exists. Anything else is "no session".
    pub async fn signed_in(&self, headers: &HeaderMap) -> Result<Option<SignedIn>, Internal> {
        let name = session::cookie_name(self.config.secure_cookies());
        let Some(value) = session::cookie_value(headers, name) else {
            return Ok(None);
        };
        let keys = self
            .secrets
            .cookie_keys()
            .await
            .map_err(Internal::from_display("cookie keys"))?;
        let Some(id) = SessionId::open(&keys, value) else {
            return Ok(None);
        };
        let Some(session) = self
            .store
            .session(&id)
            .await
            .map_err(Internal::from_display("session read"))?
        else {
            return Ok(None);
        };
        let account = self
            .store
            .account(&session.account_id)
            .await
            .map_err(Internal::from_display("account read"))?;
        // A session from before the account's last "end every session" is no session.
        Ok(account
            .filter(|a| session.is_current_for(a))
            .map(|account| SignedIn {
                id,
                session,
                account,
            }))
    }

    /// `Set-Cookie` value for a new session.
    pub async fn session_cookie(
        &self,
        id: &SessionId,
        session: &Session,
    ) -> Result<String, Internal> {
        let keys = self
            .secrets
            .cookie_keys()
            .await
            .map_err(Internal::from_display("cookie keys"))?;
        let max_age = (session.expires_at - self.now()).max(0);
        Ok(session::set_cookie(
            &id.seal(&keys),
            max_age,
            self.config.secure_cookies(),
        ))
    }
}

/// A request's signed-in user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub id: SessionId,
    pub session: Session,
    pub account: Account,
}

/// A page that needs a signed-in person takes `SignedIn` as an argument: without one the
/// browser is sent to sign in and brought back (302 `/login?return_to=` this page); a
/// session that cannot be read is the error page.
impl FromRequestParts<AppState> for SignedIn {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        match state.signed_in(&parts.headers).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(page::login_redirect(&parts.uri)),
            Err(e) => Err(e.page().into_response()),
        }
    }
}

/// The caller's address: API Gateway's `sourceIp` from the Lambda request context, else
/// the peer address when the server records it (axum's `ConnectInfo`). `X-Forwarded-For`
/// is never used: any client can write it.
pub fn source_address(extensions: &http::Extensions) -> Option<IpAddr> {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = extensions.get::<RequestContext>() {
        return ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok());
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
}

/// Extractor for [`source_address`].
#[derive(Debug, Clone, Copy)]
pub struct SourceAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for SourceAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(source_address(&parts.extensions)))
    }
}

/// The page a throttled person sees: 429, `Retry-After`, when to try again, and (for
/// passwords) how to reset it.
pub fn throttled_page(locked: Locked, action: Action) -> axum::response::Response {
    let what = match action {
        Action::Password => "sign-in",
        Action::DeviceCode => "code",
        Action::ResetRequest => "password reset",
        Action::JwtGrant => "token",
        Action::DeviceStart => "device login",
    };
    let body = maud::html! {
        p {
            "There were too many " (what) " attempts. For your account's safety, please try \
            again in " (locked.wait_text()) "."
        }
        @if action == Action::Password {
            p {
                "If you have forgotten your password, "
                a href="/account/password/reset" { "reset it" }
                ": choosing a new password through the emailed link ends the pause for your \
                account."
            }
        }
    };
    let mut response = page::html(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", body);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(locked.retry_after.max(1)),
    );
    response
}

/// For pages: refuses (429 page) when the attempt is locked out; a store failure is a
/// refusal too (503). `Ok(true)`: go ahead once the browser has shown a proof of work
/// ([`work`]), since failures by others surge.
pub async fn page_throttle_check(
    state: &AppState,
    action: Action,
    who: &Attempt<'_>,
) -> Result<bool, axum::response::Response> {
    use crate::throttle::Verdict;
    let check = state
        .store
        .throttle_check(action, &state.config.limits, who)
        .await;
    match check {
        Ok(Verdict::Go) => Ok(false),
        Ok(Verdict::Prove) => Ok(true),
        Ok(Verdict::Locked(locked)) => Err(throttled_page(locked, action)),
        Err(e) => throttle_page(action, Err(e)).map_or(Ok(false), Err),
    }
}

/// For pages: counts a failed (or, for reset requests, any) attempt; `Err` is the 429 page
/// when this attempt brought a lock about, or 503 when it could not be counted.
pub async fn page_throttle_count(
    state: &AppState,
    action: Action,
    who: &Attempt<'_>,
) -> Result<(), axum::response::Response> {
    let count = state
        .store
        .throttle_count(action, &state.config.limits, who)
        .await;
    throttle_page(action, count).map_or(Ok(()), Err)
}

/// The refusal a throttle answer calls for, if any.
fn throttle_page(
    action: Action,
    lock: Result<Option<Locked>, crate::store::StoreError>,
) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    match lock {
        Ok(None) => None,
        Ok(Some(locked)) => Some(throttled_page(locked, action)),
        Err(e) => Some(Internal::new("throttle", e).page().into_response()),
    }
}
