//! Fixtures for the integration tests: stores on both backends, the services the test
//! command starts (DynamoDB Local, moto), routers with pinned clocks.
//!
//! The test command (`tests/run.sh`) starts the services and sets
//! `IDENTITY_TEST_DYNAMODB_ENDPOINT` and `IDENTITY_TEST_SECRETSMANAGER_ENDPOINT`. A test
//! that needs a service (or a tool the test command installs) and does not find it fails:
//! a skipped check must not count as a passed one. Only `IDENTITY_TEST_SKIP_SERVICES=1`,
//! set by hand for a quick loop, turns those failures into "skipped" lines.

pub mod addon_suite;
pub mod faults;
pub mod iam;
pub mod jwt_suite;
pub mod oauth_suite;
pub mod org_suite;
pub mod proxy;
pub mod runtime_api;
pub mod saml_idp;
pub mod sso_suite;
pub mod stack;
pub mod suite;
pub mod template;

/// Runs each named check of a suite module (`tests/src/<suite>.rs`, each check an
/// `async fn(&Fixture)`) on both backends: as `embedded::<check>` and `dynamodb::<check>`.
#[macro_export]
macro_rules! on_both_backends {
    ($suite:ident: $($check:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let f = $crate::embedded().await;
                    $crate::$suite::$check(&f).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let Some(f) = $crate::dynamodb().await else { return };
                    $crate::$suite::$check(&f).await;
                }
            )*
        }
    };
}

use std::sync::Arc;

use aws_config::BehaviorVersion;
use identity_shared::clock::FixedClock;
use identity_shared::config::{Config, SecretsSpec, StoreSpec};
use identity_shared::store::dynamodb::DynamoDb;
use identity_shared::store::embedded::Embedded;
use identity_shared::store::{Backend, Store};

/// A store under test, its clock (pinned; tests move it) and what keeps it alive.
pub struct Fixture {
    pub store: Store,
    pub clock: FixedClock,
    pub backend: &'static str,
    dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// A second handle on the same data, as another process would open it.
    pub async fn reopen(&self) -> Store {
        let backend: Arc<dyn Backend> = match &self.dir {
            Some(dir) => Arc::new(Embedded::open(dir.path()).expect("reopen embedded")),
            None => self.store.backend().clone(),
        };
        Store::new(backend, Arc::new(self.clock.clone()))
    }
}

/// Epoch seconds now; fixtures start their pinned clocks here so DynamoDB items look real.
pub fn real_now() -> i64 {
    use identity_shared::Clock;
    identity_shared::clock::SystemClock.now()
}

/// Whether a missing service or tool is a failure: always, unless the developer opted out
/// with `IDENTITY_TEST_SKIP_SERVICES=1`.
pub fn services_required() -> bool {
    std::env::var("IDENTITY_TEST_SKIP_SERVICES").as_deref() != Ok("1")
}

fn service_endpoint(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if services_required() => panic!(
            "{var} is not set: run ./tests/run.sh, which starts {what} (or set IDENTITY_TEST_SKIP_SERVICES=1 to skip)"
        ),
        _ => {
            eprintln!("skipped: {var} not set ({what} not running); run ./tests/run.sh");
            None
        }
    }
}

pub async fn embedded() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = FixedClock::at(real_now());
    let backend = Arc::new(Embedded::open(dir.path()).expect("open embedded store"));
    Fixture {
        store: Store::new(backend, Arc::new(clock.clone())),
        clock,
        backend: "embedded",
        dir: Some(dir),
    }
}

/// AWS SDK configuration pointing at a local stand-in.
pub async fn local_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// The service's own SDK settings (`identity_shared::aws`: timeouts, retries) pointing at
/// `endpoint`: for tests of what those settings do when the network fails.
pub async fn service_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    identity_shared::aws::loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// A Secrets Manager client on moto, or `None` when skipped.
pub async fn secretsmanager_client() -> Option<aws_sdk_secretsmanager::Client> {
    let endpoint = secretsmanager_endpoint()?;
    Some(aws_sdk_secretsmanager::Client::new(
        &local_sdk_config(&endpoint).await,
    ))
}

/// The keys of the Secrets Manager secrets under `prefix`, fetched on every read (refresh 0:
/// as a function whose refresh interval has passed).
pub fn fresh_secrets(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
) -> identity_shared::secrets::Secrets {
    identity_shared::secrets::Secrets::new(
        Arc::new(
            identity_shared::secrets::secretsmanager::SecretsManager::new(
                client.clone(),
                prefix.to_string(),
            ),
        ),
        std::time::Duration::ZERO,
    )
}

/// Creates the secret `id` holding the JSON document `doc`.
pub async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
    doc: &serde_json::Value,
) {
    client
        .create_secret()
        .name(id)
        .secret_string(doc.to_string())
        .send()
        .await
        .expect("create secret");
}

/// A DynamoDB Local store with fresh tables (unique prefix), or `None` when skipped.
pub async fn dynamodb() -> Option<Fixture> {
    let endpoint = service_endpoint("IDENTITY_TEST_DYNAMODB_ENDPOINT", "DynamoDB Local")?;
    let sdk = local_sdk_config(&endpoint).await;
    let prefix = format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let db = DynamoDb::new(aws_sdk_dynamodb::Client::new(&sdk), prefix);
    db.create_tables()
        .await
        .expect("create tables in DynamoDB Local");
    let clock = FixedClock::at(real_now());
    Some(Fixture {
        store: Store::new(Arc::new(db), Arc::new(clock.clone())),
        clock,
        backend: "dynamodb",
        dir: None,
    })
}

/// Says the DynamoDB-backed test was skipped (or panics when services are required).
pub fn dynamodb_endpoint_or_skip() -> Option<String> {
    service_endpoint("IDENTITY_TEST_DYNAMODB_ENDPOINT", "DynamoDB Local")
}

/// The moto Secrets Manager endpoint, or `None` when skipped.
pub fn secretsmanager_endpoint() -> Option<String> {
    service_endpoint(
        "IDENTITY_TEST_SECRETSMANAGER_ENDPOINT",
        "moto (Secrets Manager)",
    )
}

/// Service state on an embedded store in a temp dir, with a pinned clock.
pub async fn app_state() -> (identity_shared::AppState, FixedClock, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = FixedClock::at(real_now());
    let config = Config::new(
        "http://127.0.0.1:3000".into(),
        StoreSpec::Embedded(dir.path().to_path_buf()),
        SecretsSpec::Embedded,
    )
    .expect("config");
    let state = identity_shared::AppState::build(config, Arc::new(clock.clone()))
        .await
        .expect("state");
    (state, clock, dir)
}

/// Reads a whole response body.
pub async fn body_bytes(response: axum::response::Response) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body")
        .to_vec()
}

pub async fn body_json(response: axum::response::Response) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(response).await).expect("JSON body")
}

/// Creates an account, starts its session and returns the `Cookie` header value for it.
pub async fn signed_in_cookie(
    state: &identity_shared::AppState,
    email: &str,
    status: identity_shared::accounts::AccountStatus,
) -> String {
    use identity_shared::accounts::{Accounts, Email};
    use identity_shared::session::Sessions;
    let account = state
        .store
        .create_account(&Email::parse(email).unwrap(), None, status)
        .await
        .unwrap();
    let (id, s) = state
        .store
        .start_session(&account, Some("acme"), state.config.session_lifetime_secs)
        .await
        .unwrap();
    let set_cookie = state.session_cookie(&id, &s).await.unwrap();
    set_cookie.split(';').next().unwrap().to_string()
}

/// A log writer for tests: everything the subscriber writes, kept in memory.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().expect("log buffer lock").clone()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The nonce a browser's proof-of-work script finds for `challenge` and `subject` (the
/// page's `work_challenge` and `email` fields), found here as the script does: the first
/// decimal counter whose SHA-256 with them starts with enough zero bits.
pub fn solve_work(challenge: &str, subject: &str) -> String {
    use identity_shared::http::work;
    (0u64..)
        .map(|n| n.to_string())
        .find(|n| {
            let hash = openssl::sha::sha256(format!("{challenge}\n{subject}\n{n}").as_bytes());
            work::leading_zero_bits(&hash) >= work::BITS
        })
        .expect("a nonce within u64")
}

/// The grant of the CLI's login for `account` (what `identity login` has a person approve):
/// API keys made through the store record it, as the route does.
pub async fn cli_login_grant(
    store: &identity_shared::store::Store,
    account: &identity_shared::accounts::Account,
) -> String {
    use identity_shared::oauth::client::{CLI_CLIENT_ID, CLI_CLIENT_SCOPE};
    use identity_shared::oauth::{Grants, OAuthClients, Scopes};
    store.ensure_cli_client().await.unwrap();
    store
        .grant_for(
            &account.id,
            CLI_CLIENT_ID,
            &Scopes::parse(CLI_CLIENT_SCOPE).unwrap(),
        )
        .await
        .unwrap()
        .gid
        .to_string()
}
