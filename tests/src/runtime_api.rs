//! Running the real Lambda `bootstrap`s (from `sam build`) locally: an emulator of the
//! Lambda Runtime API, the bootstrap process it serves, API Gateway HTTP API (payload 2.0)
//! events, and a gateway that sends each request to the function `template.yaml` routes it
//! to.
//!
//! The emulator implements what a runtime calls (`/2018-06-01/runtime/...`):
//! `GET invocation/next` (long poll: answers when an invocation is queued, with the event
//! and the `Lambda-Runtime-*` headers), `POST invocation/{id}/response`,
//! `POST invocation/{id}/error` and `POST init/error`. One emulator serves one process, as
//! the Lambda service does for one execution environment.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use identity_shared::AppState;
use identity_shared::config::{Config, SecretsSpec, StoreSpec};
use identity_shared::secrets::secretsmanager::SecretsManager;
use identity_shared::secrets::{SecretKind, Secrets, generate};
use identity_shared::store::Store;
use identity_shared::store::dynamodb::DynamoDb;

use crate::template::{self, Route};

const PREFIX: &str = "/2018-06-01/runtime";

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The body the runtime posted to `/response`.
    Response(Vec<u8>),
    /// The body (and error type header) posted to `/error`.
    Error { error_type: String, body: String },
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the runtime reported an init error: {0}")]
    InitError(String),
    #[error("the invocation failed ({error_type}): {body}")]
    Function { error_type: String, body: String },
    #[error("the emulator stopped")]
    Stopped,
}

struct Queued {
    id: String,
    event: Vec<u8>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<String>>,
    /// Invocations handed to the runtime (`next` answered).
    delivered: Mutex<u64>,
}

/// A Lambda Runtime API on 127.0.0.1 (a random port).
pub struct RuntimeApi {
    addr: SocketAddr,
    sender: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            delivered: Mutex::new(0),
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Runtime API emulator");
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("Runtime API emulator");
        });
        RuntimeApi {
            addr,
            sender,
            shared,
            server,
        }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` (host:port).
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// What the runtime posted to `/init/error`, if anything.
    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().unwrap().clone()
    }

    /// Queues one invocation and waits for its outcome.
    pub async fn invoke(&self, event: &Value, timeout: Duration) -> Result<Vec<u8>, InvokeError> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().unwrap().insert(id.clone(), tx);
        self.sender
            .send(Queued {
                id: id.clone(),
                event: serde_json::to_vec(event).unwrap(),
            })
            .map_err(|_| InvokeError::Stopped)?;
        let deadline = Instant::now() + timeout;
        let mut rx = rx;
        loop {
            // Wake up now and then to notice an init error (the runtime then never answers).
            match tokio::time::timeout(Duration::from_millis(50), &mut rx).await {
                Ok(Ok(Outcome::Response(body))) => return Ok(body),
                Ok(Ok(Outcome::Error { error_type, body })) => {
                    return Err(InvokeError::Function { error_type, body });
                }
                Ok(Err(_)) => return Err(InvokeError::Stopped),
                Err(_) => {
                    if let Some(e) = self.init_error() {
                        return Err(InvokeError::InitError(e));
                    }
                    if Instant::now() >= deadline {
                        self.shared.waiting.lock().unwrap().remove(&id);
                        return Err(InvokeError::Timeout(timeout));
                    }
                }
            }
        }
    }

    /// How many invocations the runtime has fetched.
    pub fn delivered(&self) -> u64 {
        *self.shared.delivered.lock().unwrap()
    }
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    let Some(q) = s.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    *s.delivered.lock().unwrap() += 1;
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    (
        [
            ("lambda-runtime-aws-request-id", q.id.clone()),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:identity-local".to_string(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".to_string(),
            ),
            ("content-type", "application/json".to_string()),
        ],
        q.event,
    )
        .into_response()
}

fn complete(s: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match s.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(s): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    complete(&s, &id, Outcome::Response(body.to_vec()))
}

fn error_type(headers: &HeaderMap) -> String {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_string()
}

async fn error(
    State(s): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let outcome = Outcome::Error {
        error_type: error_type(&headers),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    complete(&s, &id, outcome)
}

async fn init_error(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    *s.init_error.lock().unwrap() = Some(format!(
        "{}: {}",
        error_type(&headers),
        String::from_utf8_lossy(&body)
    ));
    StatusCode::ACCEPTED
}

// ---------------------------------------------------------------------------------------
// The bootstrap process
// ---------------------------------------------------------------------------------------

/// Environment variables as a process takes them.
pub fn env_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The Lambda execution environment's own variables (the runtime needs them), for a
/// function named `name`.
pub fn lambda_environment(name: &str, runtime_api: &str) -> Vec<(String, String)> {
    env_of(&[
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/identity-local"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("TZ", ":UTC"),
    ])
}

/// A running bootstrap with its own Runtime API. Its output (stdout + stderr) is kept;
/// the process is killed when this is dropped.
pub struct Bootstrap {
    pub name: String,
    pub api: RuntimeApi,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    pub started: Instant,
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bootstrap {
    /// Starts `program args…` (the bootstrap, or e.g. `chroot ROOT /bootstrap`) with only
    /// the Lambda variables and `env` in its environment.
    pub async fn start(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
    ) -> Bootstrap {
        let api = RuntimeApi::start().await;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(lambda_environment(name, &api.address()))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let output = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Bootstrap {
            name: name.to_string(),
            api,
            child,
            output,
            started,
        }
    }

    /// The process id (for reading its memory and CPU time from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// The output once it holds `text`, or as it is after `within`: the process reports an
    /// invocation's end to the Runtime API before its log line has been read from its pipe.
    pub async fn output_with(&self, text: &str, within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let output = self.output();
            if output.contains(text) || std::time::Instant::now() >= deadline {
                return output;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends one API Gateway request; panics with the process's output on any failure.
    pub async fn send(&mut self, event: &Value) -> ApiResponse {
        match self.api.invoke(event, Duration::from_secs(30)).await {
            Ok(body) => ApiResponse::parse(&body),
            Err(e) => {
                let status = self.exited();
                panic!(
                    "{}: {e} (process: {status:?}); its output:\n{}",
                    self.name,
                    self.output()
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// API Gateway HTTP API events (payload format 2.0)
// ---------------------------------------------------------------------------------------

/// One HTTP request as a client sends it to the API.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub cookies: Vec<String>,
    pub body: Option<String>,
}

impl ApiRequest {
    pub fn new(method: &str, path_and_query: &str) -> ApiRequest {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        ApiRequest {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            cookies: Vec::new(),
            body: None,
        }
    }

    pub fn get(path_and_query: &str) -> ApiRequest {
        Self::new("GET", path_and_query)
    }

    pub fn post(path: &str) -> ApiRequest {
        Self::new("POST", path)
    }

    pub fn header(mut self, name: &str, value: &str) -> ApiRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// A `name=value` cookie (API Gateway passes cookies apart from the headers).
    pub fn cookie(mut self, cookie: &str) -> ApiRequest {
        self.cookies.push(cookie.to_string());
        self
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(self, body: String) -> ApiRequest {
        let mut r = self.header("content-type", "application/x-www-form-urlencoded");
        r.body = Some(body);
        r
    }

    /// The event API Gateway sends the function for this request on `route`.
    pub fn event(&self, host: &str, route: &Route) -> Value {
        let params = route
            .matches(&self.method, &self.path)
            .expect("the request matches its route");
        let mut headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        headers.insert("host".into(), host.into());
        headers.insert("x-forwarded-proto".into(), "https".into());
        headers.insert("x-forwarded-port".into(), "443".into());
        headers.insert("x-forwarded-for".into(), "192.0.2.10".into());
        headers
            .entry("user-agent")
            .or_insert_with(|| "identity-tests".into());
        let query: serde_json::Map<String, Value> = self
            .query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), Value::String(v.to_string()))
            })
            .collect();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let mut event = json!({
            "version": "2.0",
            "routeKey": route.key(),
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": host,
                "domainPrefix": host.split('.').next().unwrap_or(host),
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "192.0.2.10",
                    "userAgent": "identity-tests",
                },
                "requestId": uuid::Uuid::new_v4().to_string(),
                "routeKey": route.key(),
                "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000",
                "timeEpoch": now.as_millis() as u64,
            },
            "isBase64Encoded": false,
        });
        if !self.cookies.is_empty() {
            event["cookies"] = json!(self.cookies);
        }
        if !query.is_empty() {
            event["queryStringParameters"] = Value::Object(query);
        }
        if !params.is_empty() {
            event["pathParameters"] = params
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        if let Some(body) = &self.body {
            event["body"] = body.clone().into();
        }
        event
    }
}

/// The function's answer, as API Gateway turns it into an HTTP response.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    /// `Set-Cookie` values.
    pub cookies: Vec<String>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    fn parse(raw: &[u8]) -> ApiResponse {
        let v: Value = serde_json::from_slice(raw).unwrap_or_else(|e| {
            panic!(
                "the function's answer is not JSON ({e}): {}",
                String::from_utf8_lossy(raw)
            )
        });
        let status = v["statusCode"].as_u64().expect("statusCode") as u16;
        let mut headers = HashMap::new();
        if let Some(h) = v["headers"].as_object() {
            for (k, val) in h {
                headers.insert(
                    k.to_ascii_lowercase(),
                    val.as_str().unwrap_or_default().to_string(),
                );
            }
        }
        if let Some(h) = v["multiValueHeaders"].as_object() {
            for (k, vals) in h {
                let joined: Vec<&str> = vals
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                headers.insert(k.to_ascii_lowercase(), joined.join(", "));
            }
        }
        let cookies = v["cookies"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let body = match v["body"].as_str() {
            None => Vec::new(),
            Some(b) if v["isBase64Encoded"].as_bool() == Some(true) => {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .expect("base64 body")
            }
            Some(b) => b.as_bytes().to_vec(),
        };
        ApiResponse {
            status,
            headers,
            cookies,
            body,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

// ---------------------------------------------------------------------------------------
// The deployment: every function's bootstrap behind the template's routes
// ---------------------------------------------------------------------------------------

/// Where `sam build` leaves the bootstraps: `IDENTITY_TEST_BOOTSTRAPS`, else
/// `.aws-sam/build` in the workspace.
pub fn build_dir() -> PathBuf {
    std::env::var_os("IDENTITY_TEST_BOOTSTRAPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| template::workspace().join(".aws-sam/build"))
}

/// `(logical id, bootstrap path)` for every function of the template, or `None` when
/// any is missing: a failure under the test command (which runs `sam build` first),
/// "skipped" when run by hand.
pub fn bootstraps() -> Option<Vec<(String, PathBuf)>> {
    let dir = build_dir();
    let all: Vec<(String, PathBuf)> = template::functions(&template::read())
        .into_iter()
        .map(|f| {
            let path = dir.join(&f.logical_id).join("bootstrap");
            (f.logical_id, path)
        })
        .collect();
    let missing: Vec<String> = all
        .iter()
        .filter(|(_, p)| !p.is_file())
        .map(|(_, p)| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(all);
    }
    if crate::services_required() {
        panic!(
            "bootstraps missing: {}; the test command builds them with `sam build` before the tests",
            missing.join(", ")
        );
    }
    eprintln!(
        "skipped: bootstraps missing ({}); run ./tests/run.sh (or sam build)",
        missing.join(", ")
    );
    None
}

/// The five functions running, each its real bootstrap, behind the template's routes.
pub struct Deployment {
    pub host: String,
    pub routes: Vec<Route>,
    pub functions: HashMap<String, Bootstrap>,
}

impl Deployment {
    /// The route and function API Gateway would pick for this request.
    pub fn route(&self, request: &ApiRequest) -> Route {
        self.routes
            .iter()
            .find(|r| r.matches(&request.method, &request.path).is_some())
            .unwrap_or_else(|| {
                panic!(
                    "no route for {} {} in template.yaml",
                    request.method, request.path
                )
            })
            .clone()
    }

    /// Starts every bootstrap, each with its environment in `local` ([`LocalAws::env_for`]:
    /// its own role and access key when provisioned judged).
    pub async fn start(host: &str, local: &LocalAws) -> Option<Deployment> {
        let bootstraps = bootstraps()?;
        let mut functions = HashMap::new();
        for (id, path) in bootstraps {
            let env = local.env_for(&id);
            functions.insert(id.clone(), Bootstrap::start(&id, &path, &[], &env).await);
        }
        Some(Deployment {
            host: host.to_string(),
            routes: template::routes(&template::read()),
            functions,
        })
    }

    /// Sends a request through the route table to its function's bootstrap.
    pub async fn send(&mut self, request: ApiRequest) -> ApiResponse {
        let route = self.route(&request);
        let event = request.event(&self.host, &route);
        let f = self
            .functions
            .get_mut(&route.function)
            .unwrap_or_else(|| panic!("{} is not running", route.function));
        f.send(&event).await
    }

    /// Everything every bootstrap printed.
    pub fn output(&self) -> String {
        let mut names: Vec<&String> = self.functions.keys().collect();
        names.sort();
        names
            .into_iter()
            .map(|n| format!("--- {n}\n{}", self.functions[n].output()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// A deployment's AWS resources on the local stand-ins
// ---------------------------------------------------------------------------------------

/// One deployment's tables (DynamoDB Local, a unique prefix) and secrets (moto), as
/// template.yaml makes them in AWS.
pub struct LocalAws {
    /// The functions' environment: what template.yaml's Globals set, with the SDK pointed
    /// at the stand-ins (in AWS, endpoints and credentials come from Lambda's environment).
    pub env: Vec<(String, String)>,
    /// The same store and secrets, for seeding and checks.
    pub state: AppState,
    /// IAM over the functions' calls, when provisioned judged.
    pub judge: Option<Arc<crate::stack::Judge>>,
    prefix: String,
    /// Each secret's name and ARN.
    secret_arns: Vec<(String, String)>,
}

impl LocalAws {
    /// `None` when the stand-ins are not running (a failure under the test command).
    pub async fn provision(base_url: &str) -> Option<LocalAws> {
        let (Some(ddb), Some(sm)) = (
            crate::dynamodb_endpoint_or_skip(),
            crate::secretsmanager_endpoint(),
        ) else {
            return None;
        };
        let prefix = format!("e2e{}-", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let db = DynamoDb::new(
            aws_sdk_dynamodb::Client::new(&crate::local_sdk_config(&ddb).await),
            prefix.clone(),
        );
        db.create_tables().await.expect("create tables");
        let sm_client = aws_sdk_secretsmanager::Client::new(&crate::local_sdk_config(&sm).await);
        let mut secret_arns = Vec::new();
        for kind in SecretKind::ALL {
            let name = format!("{prefix}{}", kind.name());
            let made = sm_client
                .create_secret()
                .name(&name)
                .secret_string(json!({ "current": generate(kind).unwrap() }).to_string())
                .send()
                .await
                .expect("create secret in moto");
            secret_arns.push((name, made.arn().unwrap_or_default().to_string()));
        }
        let config = Config::new(
            base_url.into(),
            StoreSpec::DynamoDb {
                table_prefix: prefix.clone(),
            },
            SecretsSpec::SecretsManager {
                prefix: prefix.clone(),
            },
        )
        .expect("config");
        let state = AppState {
            config: Arc::new(config),
            store: Store::new(Arc::new(db), identity_shared::clock::system()),
            secrets: Arc::new(Secrets::new(
                Arc::new(SecretsManager::new(sm_client, prefix.clone())),
                Duration::from_secs(300),
            )),
            mail: Arc::new(identity_shared::outbox::LoggingSender),
            aws: None,
        };
        let env = env_of(&[
            ("IDENTITY_BASE_URL", base_url),
            ("IDENTITY_STORE", "dynamodb:"),
            ("IDENTITY_TABLE_PREFIX", &prefix),
            ("IDENTITY_SECRETS", &format!("secretsmanager:{prefix}")),
            ("IDENTITY_REFRESH_GRACE_SECS", "10"),
            ("RUST_LOG", "info"),
            ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
            ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &sm),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        Some(LocalAws {
            env,
            state,
            judge: None,
            prefix,
            secret_arns,
        })
    }

    /// As [`LocalAws::provision`], with IAM: the functions' policies rendered from
    /// `template.yaml` (`crate::stack::render`, AWS's SAM transform) and gates in front of
    /// DynamoDB Local and moto that refuse what a function's policy does not allow, as AWS
    /// does, and record every call ([`crate::stack::Judge`]).
    pub async fn provision_judged(base_url: &str) -> Option<LocalAws> {
        let mut local = Self::provision(base_url).await?;
        let options = crate::stack::Options::from_env("127.0.0.1:0".parse().unwrap())
            .expect("the test command's environment");
        let raw = crate::stack::render(
            &options.python,
            &options.template,
            &[
                ("BaseUrl".into(), base_url.into()),
                ("TablePrefix".into(), local.prefix.clone()),
                ("SecretsPrefix".into(), local.prefix.clone()),
            ],
        )
        .expect("render template.yaml");
        let by_logical: std::collections::BTreeMap<String, String> = raw["secrets"]
            .as_object()
            .expect("secrets")
            .iter()
            .map(|(logical, spec)| {
                let name = spec["name"].as_str().unwrap_or_default();
                let arn = local
                    .secret_arns
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_else(|| panic!("no secret {name} provisioned"));
                (logical.clone(), arn)
            })
            .collect();
        let rendered =
            crate::stack::Rendered::read(&raw, &by_logical).expect("read the rendered template");
        let judge = crate::stack::Judge::new(
            rendered,
            local.secret_arns.clone(),
            &by_logical,
            &local.prefix,
            &options.dynamodb,
            &options.moto,
        )
        .await
        .expect("start the IAM gates");
        local.judge = Some(Arc::new(judge));
        Some(local)
    }

    /// The environment of one execution environment of `function`: its own role and
    /// access key when judged, else the shared environment.
    pub fn env_for(&self, function: &str) -> Vec<(String, String)> {
        match &self.judge {
            Some(j) => j.instance_environment(function).0,
            None => self.env.clone(),
        }
    }
}

/// A request each function answers itself (not the 404 fallback), and the status it gets
/// from a fresh, empty deployment (0: any status below 500).
pub fn probe(logical_id: &str) -> (ApiRequest, u16) {
    match logical_id {
        "SsoAcsFunction" => (ApiRequest::get("/session"), 401),
        "OAuthAuthorizeFunction" => (
            ApiRequest::get("/oauth/authorize?response_type=code&client_id=nobody"),
            400,
        ),
        "OAuthTokenFunction" => (
            ApiRequest::get("/.well-known/oauth-authorization-server"),
            200,
        ),
        "AddonSsoFunction" => (ApiRequest::get("/addons/none/sso"), 0),
        "JwtGrantFunction" => (
            ApiRequest::post("/oauth/jwt/token").form("grant_type=password".into()),
            400,
        ),
        other => panic!("no probe for {other}"),
    }
}
