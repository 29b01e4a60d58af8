//! The product as a person uses it: every browser journey driven in real headless Chromium
//! (Debian's `chromium` and `chromium-driver`, through WebDriver) against `identity serve` on
//! loopback with the embedded store. The person types and clicks; the browser follows
//! redirects, sends the headers it sends and applies each page's policies.
//!
//! Around it, on another loopback origin, runs what lives outside the service: an identity
//! provider that signs real SAML Responses (its page asks for an email, then auto-posts to
//! our ACS), an OAuth client's redirect URI, and a page from another site that tries to post
//! our sign-in form.
//!
//! Every page a journey reaches is checked with axe-core (no serious or critical violation),
//! for having one `main` landmark and one `h1`, for fitting a 360 px wide screen, and is
//! saved as a screenshot (`IDENTITY_TEST_SCREENSHOTS`, default `target/tmp/screenshots`).
//!
//! Needs `chromium`, `chromedriver` and axe-core (`tests/run.sh` installs them). Without
//! them the journeys fail, unless `IDENTITY_TEST_SKIP_SERVICES=1` (then they are skipped
//! with a message).

use crate::free_port;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use sso_acs::saml::Sp;
use sso_acs::saml::idp_signer::{IdpSigner, LogoutKind, LogoutSpec, ResponseSpec, Sign};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_identity");
const PASSWORD_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";

type R<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

/// Journeys run one at a time: two cores, and each has its own Chromium.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------
// The tools
// ---------------------------------------------------------------------------------------

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
    axe: Arc<String>,
    screenshots: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The browser, its driver and axe-core; `None` (skip) only when the test command did not
/// promise them.
fn tools() -> Option<Tools> {
    let env_path =
        |var: &str, default: PathBuf| std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    let chromium = env_path("IDENTITY_TEST_CHROMIUM", "/usr/bin/chromium".into());
    let chromedriver = env_path("IDENTITY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver".into());
    let axe_path = env_path(
        "IDENTITY_TEST_AXE",
        workspace_root().join(".test-deps/node_modules/axe-core/axe.min.js"),
    );
    let screenshots = env_path(
        "IDENTITY_TEST_SCREENSHOTS",
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
    );
    let missing: Vec<String> = [&chromium, &chromedriver, &axe_path]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "browser journeys need {} (tests/run.sh installs them)",
            missing.join(", ")
        );
        if std::env::var("IDENTITY_TEST_SKIP_SERVICES").as_deref() != Ok("1") {
            panic!("{message}");
        }
        eprintln!("skipped: {message}");
        return None;
    }
    std::fs::create_dir_all(&screenshots).expect("screenshot folder");
    let axe = std::fs::read_to_string(&axe_path).expect("read axe-core");
    Some(Tools {
        chromium,
        chromedriver,
        axe: Arc::new(axe),
        screenshots,
    })
}

// ---------------------------------------------------------------------------------------
// `identity serve` and `identity admin`
// ---------------------------------------------------------------------------------------

struct Service {
    base: String,
    /// The embedded store of `identity serve` (the IdPs' certificates are written here too).
    store: tempfile::TempDir,
    /// `identity serve`; `None` against the local stack.
    _child: Option<Child>,
    /// The local stack's control endpoint when the journeys run against it.
    stack: Option<String>,
}

async fn http_answers(addr: &str) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_ok()
}

/// The local stack (`scripts/local-stack.sh -- CMD` exports `IDENTITY_STACK_CONTROL` and
/// `IDENTITY_BASE_URL`): the journeys then run through the deployed shape, the six
/// bootstraps behind API Gateway's routes with their own IAM policies, instead of
/// `identity serve`, and `identity admin` works on the stack's DynamoDB tables.
fn stack_control() -> Option<String> {
    std::env::var("IDENTITY_STACK_CONTROL")
        .ok()
        .filter(|v| !v.is_empty())
}

impl Service {
    /// `identity serve` with `env` added to its defaults, or a fresh deployment of the
    /// local stack (whose configuration is fixed when it starts: `World::start_serving_with`
    /// keeps journeys that configure to `identity serve`).
    async fn start_with(journey: &str, env: &[(&str, &str)]) -> R<Self> {
        let store = tempfile::tempdir()?;
        if let Some(control) = stack_control() {
            // A fresh deployment for each journey: every table emptied (keys stay), and the
            // stack's IAM audit told which journey makes the calls that follow.
            let (status, body) = http("POST", &format!("{control}/reset"), &[], Some("")).await?;
            ensure!(status == 200, "the stack's reset failed: {status} {body}");
            http("PUT", &format!("{control}/test"), &[], Some(journey)).await?;
            let base = std::env::var("IDENTITY_BASE_URL")?;
            let service = Self {
                base,
                store,
                _child: None,
                stack: Some(control),
            };
            // What an operator does after a deploy (`identity serve` does it itself): the
            // CLI's client, for `identity login`.
            service.admin(&["client", "add-cli"], None).await?;
            return Ok(service);
        }
        let port = free_port();
        let log = std::fs::File::create(store.path().join("serve.log"))?;
        let child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env(
                "IDENTITY_STORE",
                format!("embedded:{}", store.path().display()),
            )
            .env_remove("IDENTITY_BASE_URL")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !http_answers(&addr).await {
            ensure!(Instant::now() < deadline, "identity serve did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            base: format!("http://{addr}"),
            store,
            _child: Some(child),
            stack: None,
        })
    }

    /// Where the example add-on partner answers SSO: `identity serve` carries it; against
    /// the stack it runs beside the IdP on the outside server.
    fn partner_sso_url(&self, outside: &Outside) -> String {
        match self.stack {
            Some(_) => format!("{}/example-partner/sso", outside.base),
            None => format!("{}/example-partner/sso", self.base),
        }
    }

    /// `identity admin ARGS --json` against the service's store; its one JSON object.
    async fn admin(&self, args: &[&str], stdin: Option<&str>) -> R<Value> {
        let mut command = Command::new(BIN);
        command.arg("admin").args(args).arg("--json");
        if self.stack.is_none() {
            // Against the stack, the environment already names its store and secrets.
            command.env(
                "IDENTITY_STORE",
                format!("embedded:{}", self.store.path().display()),
            );
        }
        let mut child = command
            .env("IDENTITY_BASE_URL", &self.base)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await?;
        }
        drop(input);
        let out = child.wait_with_output().await?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "identity admin {args:?} failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_str(text.trim())?)
    }

    async fn user_with_password(&self, email: &str, password: &str) -> R {
        self.admin(
            &["user", "add", "--email", email, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
        .await?;
        Ok(())
    }

    /// The newest link in the outbox for `email` (welcome or password reset).
    async fn outbox_link(&self, email: &str) -> R<String> {
        let out = self.admin(&["outbox", "--email", email], None).await?;
        let body = out["messages"][0]["body"]
            .as_str()
            .ok_or_else(|| format!("no message for {email}: {out}"))?;
        let start = body
            .find(&self.base)
            .ok_or_else(|| format!("no link in the message: {body}"))?;
        let link: String = body[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        Ok(link)
    }

    fn log(&self) -> String {
        if self.stack.is_some() {
            return "(the local stack's functions print to its own output)".into();
        }
        std::fs::read_to_string(self.store.path().join("serve.log")).unwrap_or_default()
    }
}

/// One HTTP/1.1 request from the test itself (an OAuth client's back channel, a replayed
/// cookie): status and body.
async fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> R<(u16, String)> {
    let (status, _, body) = http_raw(method, url, headers, body).await?;
    Ok((status, body))
}

/// As `http`, with the response's header block too.
async fn http_raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> R<(u16, String, String)> {
    let rest = url.strip_prefix("http://").ok_or("http URLs only")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = tokio::net::TcpStream::connect(authority).await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw)).await??;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no header end")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, head.to_string(), body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

// ---------------------------------------------------------------------------------------
// The outside world: IdPs, an OAuth client's redirect URI, another site
// ---------------------------------------------------------------------------------------

struct TestIdp {
    signer: IdpSigner,
    entity_id: String,
    authn_context: &'static str,
}

struct OutsideState {
    sp: Sp,
    service: String,
    idps: Mutex<HashMap<String, Arc<TestIdp>>>,
    /// A SAMLResponse kept by an attacker, for `/elsewhere/saml`.
    stash: Mutex<String>,
    /// The NameIDs of the LogoutRequests the IdPs received, in order.
    logouts: Mutex<Vec<String>>,
}

/// What runs on another origin than the service: `http://127.0.0.1:{port}` (same site,
/// other origin) and `http://localhost:{port}` (another site).
struct Outside {
    base: String,
    port: u16,
    state: Arc<OutsideState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(serde::Deserialize)]
struct IdpQuery {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
    #[serde(rename = "RelayState", default)]
    relay_state: String,
}

#[derive(serde::Deserialize)]
struct IdpAnswer {
    email: String,
    request_id: String,
    relay_state: String,
}

/// Escapes text for the outside parties' hand-written pages (their HTML is not ours).
fn esc(text: &str) -> String {
    maud::html! { (text) }.into_string()
}

fn outside_page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
<body><main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    ))
    .into_response()
}

/// The IdP's own sign-in page, as an organisation's IdP shows it.
async fn idp_page(
    State(o): State<Arc<OutsideState>>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<IdpQuery>,
) -> Response {
    let Ok(request_id) = identity_cli::dev_idp::request_id(&q.saml_request, &o.sp) else {
        return outside_page("Bad request", "<p>Not an AuthnRequest for our SP.</p>");
    };
    outside_page(
        &format!("Sign in to {id}"),
        &format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"request_id\" value=\"{}\">\
<input type=\"hidden\" name=\"relay_state\" value=\"{}\">\
<label for=\"email\">Work email</label><input id=\"email\" name=\"email\" type=\"email\">\
<button type=\"submit\">Sign in</button></form>",
            esc(&request_id),
            esc(&q.relay_state)
        ),
    )
}

/// Signs the Response and auto-posts it to the ACS, as IdPs do (HTTP-POST binding).
async fn idp_answer(
    State(o): State<Arc<OutsideState>>,
    UrlPath(id): UrlPath<String>,
    axum::Form(a): axum::Form<IdpAnswer>,
) -> Response {
    let Some(idp) = o.idps.lock().unwrap().get(&id).cloned() else {
        return outside_page("Unknown IdP", "");
    };
    let spec = ResponseSpec {
        issuer: idp.entity_id.clone(),
        destination: o.sp.acs_url.clone(),
        audience: o.sp.entity_id.clone(),
        recipient: o.sp.acs_url.clone(),
        email: a.email,
        in_response_to: Some(a.request_id),
        authn_context: Some(idp.authn_context.to_string()),
        now: identity_shared::clock::system().now(),
        lifetime_secs: 300,
        sign: Sign::Both,
    };
    let xml = idp.signer.response(&spec).expect("sign");
    let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
    outside_page(
        "Signing you in",
        &format!(
            "<form id=\"f\" method=\"post\" action=\"{}\">\
<input type=\"hidden\" name=\"SAMLResponse\" value=\"{encoded}\">\
<input type=\"hidden\" name=\"RelayState\" value=\"{}\">\
<button type=\"submit\">Continue</button></form>\
<script>document.getElementById('f').submit()</script>",
            esc(&o.sp.acs_url),
            esc(&a.relay_state)
        ),
    )
}

/// The IdP's Single Logout endpoint: takes the service's LogoutRequest (HTTP-Redirect),
/// ends its own session, and answers with a LogoutResponse signed by xmlsec, auto-posted
/// back (HTTP-POST), as IdPs do.
async fn idp_logout(
    State(o): State<Arc<OutsideState>>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<IdpQuery>,
) -> Response {
    let Some(idp) = o.idps.lock().unwrap().get(&id).cloned() else {
        return outside_page("Unknown IdP", "");
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&q.saml_request) else {
        return outside_page("Bad request", "<p>Not base64.</p>");
    };
    let mut xml = String::new();
    if std::io::Read::read_to_string(
        &mut flate2::read::DeflateDecoder::new(raw.as_slice()),
        &mut xml,
    )
    .is_err()
    {
        return outside_page("Bad request", "<p>Not DEFLATE.</p>");
    }
    let Ok(request) = xml.parse::<samael::schema::LogoutRequest>() else {
        return outside_page("Bad request", "<p>Not a LogoutRequest.</p>");
    };
    let (Some(request_id), Some(name_id)) = (request.id, request.name_id) else {
        return outside_page("Bad request", "<p>No ID or NameID.</p>");
    };
    o.logouts.lock().unwrap().push(name_id.value);
    let answer = idp.signer.logout_post(&LogoutSpec {
        issuer: idp.entity_id.clone(),
        destination: o.sp.slo_url.clone(),
        now: identity_shared::clock::system().now(),
        kind: LogoutKind::Response {
            in_response_to: request_id,
            success: true,
        },
    });
    let Ok(encoded) = answer else {
        return outside_page("Error", "<p>Signing failed.</p>");
    };
    outside_page(
        &format!("Signed out of {id}"),
        &format!(
            "<form id=\"f\" method=\"post\" action=\"{}\">\
<input type=\"hidden\" name=\"SAMLResponse\" value=\"{encoded}\">\
<button type=\"submit\">Continue</button></form>\
<script>document.getElementById('f').submit()</script>",
            esc(&o.sp.slo_url)
        ),
    )
}

/// An OAuth client's redirect URI: shows what it was given.
async fn callback(RawQuery(q): RawQuery) -> Response {
    outside_page(
        "Application callback",
        &format!("<p id=\"query\">{}</p>", esc(&q.unwrap_or_default())),
    )
}

/// A page of another site with a form aimed at the service's sign-in.
async fn foreign_form(State(o): State<Arc<OutsideState>>) -> Response {
    outside_page(
        "Another site",
        &format!(
            "<form method=\"post\" action=\"{}/login\">\
<input type=\"hidden\" name=\"email\" value=\"pat@elsewhere.test\">\
<input type=\"hidden\" name=\"password\" value=\"correct horse battery\">\
<button type=\"submit\">Win a prize</button></form>",
            esc(&o.service)
        ),
    )
}

/// A page of another site that posts a SAMLResponse it holds to the service's ACS.
async fn stashed_response(State(o): State<Arc<OutsideState>>) -> Response {
    outside_page(
        "Another site",
        &format!(
            "<form method=\"post\" action=\"{}\">\
<input type=\"hidden\" name=\"SAMLResponse\" value=\"{}\">\
<button type=\"submit\">See the photos</button></form>",
            esc(&o.sp.acs_url),
            esc(&o.stash.lock().unwrap())
        ),
    )
}

impl Outside {
    /// A Response signed by IdP `idp` for `email`, answering AuthnRequest `request_id`.
    fn signed_response(&self, idp: &str, email: &str, request_id: &str) -> R<String> {
        let idp = self
            .state
            .idps
            .lock()
            .unwrap()
            .get(idp)
            .cloned()
            .ok_or("no such IdP")?;
        let xml = idp.signer.response(&ResponseSpec {
            issuer: idp.entity_id.clone(),
            destination: self.state.sp.acs_url.clone(),
            audience: self.state.sp.entity_id.clone(),
            recipient: self.state.sp.acs_url.clone(),
            email: email.to_string(),
            in_response_to: Some(request_id.to_string()),
            authn_context: Some(PASSWORD_CONTEXT.to_string()),
            now: identity_shared::clock::system().now(),
            lifetime_secs: 300,
            sign: Sign::Both,
        })?;
        Ok(base64::engine::general_purpose::STANDARD.encode(xml))
    }

    async fn start(service: &str, stack: bool) -> R<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(OutsideState {
            sp: Sp::from_base_url(service),
            service: service.to_string(),
            idps: Mutex::new(HashMap::new()),
            stash: Mutex::new(String::new()),
            logouts: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/idp/{id}/sso", get(idp_page).post(idp_answer))
            .route("/idp/{id}/slo", get(idp_logout))
            .route("/cb", get(callback))
            .route("/elsewhere", get(foreign_form))
            .route("/elsewhere/saml", get(stashed_response))
            .with_state(state.clone());
        // Against the stack, the example add-on partner runs here, on the stack's store
        // (the environment names it), as a partner runs on its own host.
        let app = if stack {
            let partner = identity_shared::AppState::build(
                identity_shared::Config::from_env()?,
                identity_shared::clock::system(),
            )
            .await?;
            app.merge(identity_cli::example_partner::routes().with_state(partner))
        } else {
            app
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            state,
            task,
        })
    }

    /// Registers an IdP for `domain` with the service (`identity admin idp add`).
    async fn idp(&self, service: &Service, id: &str, domain: &str, mfa: bool) -> R {
        let extra: &[&str] = if mfa { &["--require-mfa"] } else { &[] };
        self.idp_with(service, id, domain, extra).await
    }

    /// As `idp`, with more `idp add` options (`--team T`, `--require-mfa`, …).
    async fn idp_with(&self, service: &Service, id: &str, domain: &str, extra: &[&str]) -> R {
        let signer = IdpSigner::generate(&format!("{id} test IdP"))?;
        let cert = service.store.path().join(format!("{id}.pem"));
        std::fs::write(&cert, signer.cert_pem())?;
        let entity_id = format!("{}/idp/{id}", self.base);
        let sso_url = format!("{entity_id}/sso");
        let mut args = vec![
            "idp",
            "add",
            "--id",
            id,
            "--entity-id",
            &entity_id,
            "--sso-url",
            &sso_url,
            "--domain",
            domain,
        ];
        let cert_arg = cert.display().to_string();
        args.extend(["--cert", &cert_arg]);
        args.extend_from_slice(extra);
        service.admin(&args, None).await?;
        self.state.idps.lock().unwrap().insert(
            id.to_string(),
            Arc::new(TestIdp {
                signer,
                entity_id,
                authn_context: PASSWORD_CONTEXT,
            }),
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------

struct Browser {
    client: Client,
    journey: &'static str,
    shots: PathBuf,
    axe: Arc<String>,
    pages: usize,
    profile: tempfile::TempDir,
    _driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver dies with its Child (kill_on_drop); a Chromium it started must not
        // outlive the test: its command line names this journey's profile folder.
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-f", &self.profile.path().display().to_string()])
            .status();
    }
}

const WIDE: (u32, u32) = (1024, 800);

impl Browser {
    async fn open(tools: &Tools, journey: &'static str) -> R<Self> {
        let port = free_port();
        let driver = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !http_answers(&addr).await {
            ensure!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = std::fs::remove_file(tools.screenshots.join(format!("{journey}-FAILED.png")));
        let profile = tempfile::tempdir()?;
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    // Nothing but loopback resolves: the journeys never leave this machine.
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
                    format!("--window-size={},{}", WIDE.0, WIDE.1),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await?;
        Ok(Self {
            client,
            journey,
            shots: tools.screenshots.clone(),
            axe: tools.axe.clone(),
            pages: 0,
            profile,
            _driver: driver,
        })
    }

    async fn go(&self, url: &str) -> R {
        self.client.goto(url).await?;
        Ok(())
    }

    async fn url(&self) -> R<String> {
        Ok(self.client.current_url().await?.to_string())
    }

    /// Waits (10 s at most) until the address bar satisfies `ok`.
    async fn wait_url(&self, what: &str, ok: impl Fn(&str) -> bool) -> R<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await?;
            if ok(&url) && self.ready().await? {
                return Ok(url);
            }
            ensure!(
                Instant::now() < deadline,
                "waited for {what}; the browser is at {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ready(&self) -> R<bool> {
        let state = self
            .client
            .execute("return document.readyState", vec![])
            .await?;
        Ok(state == "complete")
    }

    async fn fill(&self, css: &str, text: &str) -> R {
        let field = self.client.find(Locator::Css(css)).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }

    /// The current value of a form field.
    async fn value(&self, css: &str) -> R<String> {
        let field = self.client.find(Locator::Css(css)).await?;
        Ok(field.prop("value").await?.unwrap_or_default())
    }

    /// Clicks a link by CSS selector and waits for the page it leads to.
    async fn click(&self, css: &str) -> R {
        let link = self.client.find(Locator::Css(css)).await?;
        self.navigation(link).await
    }

    /// Clicks the button whose text is `label` and waits for the page its form leads to.
    async fn press(&self, label: &str) -> R {
        let xpath = format!("//button[normalize-space()='{label}']");
        let button = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .map_err(|e| format!("no button '{label}': {e}"))?;
        self.navigation(button).await
    }

    /// Clicks `element` and waits (10 s at most) until another document has loaded: the
    /// current one is marked first, so a form that answers on the same URL is not mistaken
    /// for the page before it.
    async fn navigation(&self, element: fantoccini::elements::Element) -> R {
        self.client
            .execute("window.__journeyMark = true", vec![])
            .await?;
        element.click().await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__journeyMark === undefined && document.readyState === 'complete'",
                    vec![],
                )
                .await;
            // A navigation in progress may refuse scripts for a moment.
            if matches!(loaded, Ok(Value::Bool(true))) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "no new page after the click; at {}",
                self.url().await?
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self) -> R<String> {
        let v = self
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// A page of ours, looked at as a person and as a screen reader would: it has the
    /// expected title, one `main` and one `h1`, fits 360 px, and axe finds no serious or
    /// critical violation. Saved as a screenshot.
    async fn page(&mut self, name: &str, title: &str) -> R<String> {
        let url = self.wait_url(name, |_| true).await?;
        let got = self.client.title().await?;
        ensure!(
            got == format!("{title} · Identity"),
            "{name}: expected the page '{title}', got '{got}' at {url}: {}",
            self.text().await?
        );
        let shape = self
            .client
            .execute(
                "return [document.querySelectorAll('main').length, \
                 document.querySelectorAll('h1').length, document.documentElement.lang]",
                vec![],
            )
            .await?;
        ensure!(shape == json!([1, 1, "en"]), "{name}: landmarks {shape}");
        self.client.execute(&self.axe, vec![]).await?;
        let violations = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations\
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                   .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' + \
                        v.nodes.map(n => n.target.join(' ')).join(', '))))\
                   .catch(e => done(['axe did not run: ' + e]));",
                vec![],
            )
            .await?;
        ensure!(
            violations == json!([]),
            "{name}: accessibility violations: {violations}"
        );
        self.pages += 1;
        let file = self
            .shots
            .join(format!("{}-{:02}-{name}.png", self.journey, self.pages));
        std::fs::write(&file, self.client.screenshot().await?)?;
        self.client.set_window_size(360, 740).await?;
        let fits = self
            .client
            .execute(
                "return document.documentElement.scrollWidth <= document.documentElement.clientWidth",
                vec![],
            )
            .await?;
        self.client.set_window_size(WIDE.0, WIDE.1).await?;
        ensure!(fits == json!(true), "{name}: wider than a 360 px screen");
        Ok(url)
    }

    /// `GET /session` in this browser, as JSON (`{"error":…}` when signed out).
    async fn session(&self, base: &str) -> R<Value> {
        self.go(&format!("{base}/session")).await?;
        let text = self.text().await?;
        Ok(serde_json::from_str(&text).map_err(|e| format!("/session: {e}: {text}"))?)
    }

    async fn cookie(&self, name: &str) -> R<String> {
        Ok(self
            .client
            .get_named_cookie(name)
            .await?
            .value()
            .to_string())
    }
}

// ---------------------------------------------------------------------------------------
// A journey's world
// ---------------------------------------------------------------------------------------

struct World {
    service: Service,
    outside: Outside,
    b: Browser,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl World {
    async fn start(journey: &'static str) -> Option<Self> {
        Self::start_with(journey, &[]).await
    }

    /// A world whose `identity serve` runs with `env` (limits lowered for the journey).
    /// Through the local stack, whose functions were configured when it started, the
    /// journey is not run and says so.
    async fn start_serving_with(journey: &'static str, env: &[(&str, &str)]) -> Option<Self> {
        if stack_control().is_some() {
            eprintln!("journey {journey}: runs on identity serve only (it configures {env:?})");
            return None;
        }
        Self::start_with(journey, env).await
    }

    async fn start_with(journey: &'static str, env: &[(&str, &str)]) -> Option<Self> {
        let tools = tools()?;
        let turn = ONE_AT_A_TIME.lock().await;
        let service = Service::start_with(journey, env)
            .await
            .expect("the service");
        let outside = Outside::start(&service.base, service.stack.is_some())
            .await
            .expect("outside");
        let b = Browser::open(&tools, journey).await.expect("chromium");
        Some(Self {
            service,
            outside,
            b,
            _turn: turn,
        })
    }

    fn base(&self) -> &str {
        &self.service.base
    }

    /// Ends the journey: on failure, a screenshot of where the browser stood, the page's
    /// text and the service's log, then the panic.
    async fn finish(self, result: R) {
        if let Err(e) = &result {
            let file = self.b.shots.join(format!("{}-FAILED.png", self.b.journey));
            if let Ok(png) = self.b.client.screenshot().await {
                let _ = std::fs::write(&file, png);
            }
            let url = self.b.url().await.unwrap_or_default();
            let text = self.b.text().await.unwrap_or_default();
            eprintln!(
                "journey {} failed at {url} (screenshot {})\npage text:\n{text}\nservice log:\n{}",
                self.b.journey,
                file.display(),
                self.service.log()
            );
            let _ = self.b.client.clone().close().await;
            panic!("journey {}: {e}", self.b.journey);
        }
        let _ = self.b.client.clone().close().await;
    }

    /// From the sign-in page, through the email's IdP, back signed in. The browser may
    /// start anywhere that sends it to `/login`.
    /// Closes the browser and opens a new one (nobody signed in), for the journey's next
    /// person.
    async fn fresh_browser(&mut self, journey: &'static str) -> R {
        let tools = tools().ok_or("the tools went missing")?;
        let old = std::mem::replace(&mut self.b, Browser::open(&tools, journey).await?);
        let _ = old.client.clone().close().await;
        Ok(())
    }

    async fn sso_sign_in(&mut self, email: &str, idp: &str) -> R {
        self.b
            .wait_url("the sign-in page", |u| u.contains("/login"))
            .await?;
        self.b.page("sign-in", "Sign in").await?;
        self.b.fill("#email", email).await?;
        self.b.press("Continue").await?;
        let idp_page = format!("{}/idp/{idp}/sso", self.outside.base);
        self.b
            .wait_url("the IdP's page", |u| u.starts_with(&idp_page))
            .await?;
        self.b.fill("#email", email).await?;
        self.b.press("Sign in").await?;
        Ok(())
    }

    async fn password_sign_in(&mut self, email: &str, password: &str) -> R {
        self.b
            .wait_url("the sign-in page", |u| u.contains("/login"))
            .await?;
        self.b.fill("#email", email).await?;
        self.b.fill("#password", password).await?;
        self.b.press("Continue").await?;
        Ok(())
    }
}

/// A journey: its world (skipped when the test command did not promise the tools), its
/// steps as a block ending in `Ok(())`, then `World::finish`.
macro_rules! journey {
    ($name:literal, |$w:ident| $steps:block) => {
        let Some(mut $w) = World::start($name).await else {
            return;
        };
        let result: R = async { $steps }.await;
        $w.finish(result).await;
    };
    ($name:literal, env = $env:expr, |$w:ident| $steps:block) => {
        let Some(mut $w) = World::start_serving_with($name, $env).await else {
            return;
        };
        let result: R = async { $steps }.await;
        $w.finish(result).await;
    };
}

fn query_of(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

// ---------------------------------------------------------------------------------------
// The journeys
// ---------------------------------------------------------------------------------------

/// Login page → an email of a domain with an IdP → that IdP (another origin, reached through
/// the form's redirect chain) → back on `return_to`, signed in under SSO. Then the same
/// through the built-in development IdP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_through_the_organisations_idp_and_the_dev_idp() {
    journey!("sso", |w| {
        w.outside
            .idp(&w.service, "acme", "acme.test", false)
            .await?;
        w.service
            .admin(&["user", "add", "--email", "ada@acme.test"], None)
            .await?;
        w.b.go(&format!(
            "{}/login?return_to=/account/authorizations",
            w.base()
        ))
        .await?;
        w.sso_sign_in("ada@acme.test", "acme").await?;
        let base = w.base().to_string();
        w.b.wait_url("return_to", |u| {
            u == format!("{base}/account/authorizations")
        })
        .await?;
        w.b.page("signed-in", "Authorized applications").await?;
        let s = w.b.session(&base).await?;
        ensure!(
            s["email"] == "ada@acme.test" && s["sso"] == true && s["idp"] == "acme",
            "{s}"
        );
        ensure!(s["status"] == "active", "{s}");

        // The development IdP, from the link on the sign-in page.
        w.fresh_browser("dev-idp").await?;
        w.b.go(&format!("{base}/login")).await?;
        w.b.click("a[href^='/sso/login?idp=dev']").await?;
        w.b.wait_url("the dev IdP", |u| u.contains("/dev-idp/sso"))
            .await?;
        w.b.page("dev-idp", "Development IdP").await?;
        w.b.fill("#email", "grace@dev.test").await?;
        w.b.press("Sign in").await?;
        w.b.wait_url("the dev IdP's answer", |u| u.ends_with("/dev-idp/sso"))
            .await?;
        w.b.page("dev-idp-answer", "Development IdP").await?;
        w.b.press("Continue to the service").await?;
        w.b.wait_url("return_to", |u| u.ends_with("/account/authorizations"))
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["email"] == "grace@dev.test" && s["idp"] == "dev", "{s}");
        Ok(())
    });
}

/// A form on another origin aimed at our sign-in is refused by the browser's own word:
/// from `127.0.0.1` on another port (same site, other origin) and from `localhost` (another
/// site). The same account signs in from our own page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_origin_is_refused() {
    journey!("cross-site", |w| {
        w.service
            .user_with_password("pat@elsewhere.test", "correct horse battery")
            .await?;
        let base = w.base().to_string();
        for origin in [
            w.outside.base.clone(),
            format!("http://localhost:{}", w.outside.port),
        ] {
            w.b.go(&format!("{origin}/elsewhere")).await?;
            w.b.press("Win a prize").await?;
            w.b.wait_url("our answer", |u| u.starts_with(&format!("{base}/login")))
                .await?;
            w.b.page("refused", "Request refused").await?;
            let s = w.b.session(&base).await?;
            ensure!(s["error"] == "no_session", "{origin}: signed in: {s}");
        }
        w.b.go(&format!("{base}/login")).await?;
        w.password_sign_in("pat@elsewhere.test", "correct horse battery")
            .await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["email"] == "pat@elsewhere.test", "{s}");
        Ok(())
    });
}

struct OAuthClient {
    id: String,
    secret: String,
    redirect_uri: String,
}

async fn register_client(w: &World, name: &str, trusted: bool) -> R<OAuthClient> {
    let redirect_uri = format!("{}/cb", w.outside.base);
    let mut args = vec![
        "client",
        "add",
        "--name",
        name,
        "--redirect-uri",
        &redirect_uri,
        "--scope",
        "identity",
        "--scope",
        "read",
        "--scope",
        "write",
    ];
    if trusted {
        args.push("--trusted");
    }
    let c = w.service.admin(&args, None).await?;
    Ok(OAuthClient {
        id: c["client_id"].as_str().ok_or("client_id")?.to_string(),
        secret: c["client_secret"].as_str().unwrap_or_default().to_string(),
        redirect_uri,
    })
}

/// `GET /oauth/authorize` for `client` and `scope`, with a fresh PKCE verifier.
fn authorize_url(base: &str, client: &OAuthClient, scope: &str, state: &str) -> (String, String) {
    let verifier = identity_shared::crypto::random_token()
        .expose_secret()
        .to_string();
    let challenge = identity_shared::oauth::pkce::challenge_of(&verifier);
    let q = form(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", &client.redirect_uri),
        ("scope", scope),
        ("state", state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    (format!("{base}/oauth/authorize?{q}"), verifier)
}

/// The client's back channel: the code for tokens.
async fn exchange(base: &str, client: &OAuthClient, code: &str, verifier: &str) -> R<Value> {
    let (status, body) = http(
        "POST",
        &format!("{base}/oauth/token"),
        &[],
        Some(&form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", verifier),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ])),
    )
    .await?;
    ensure!(status == 200, "token endpoint: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

/// The code flow as a person meets it: an application sends them to authorize, they sign
/// in through their IdP, consent, and the application gets a code it exchanges. Deny sends
/// `access_denied`; a trusted client asks nothing; consent is remembered, and wider scopes
/// ask again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_code_flow_with_sign_in_and_consent() {
    journey!("oauth", |w| {
        w.outside
            .idp(&w.service, "acme", "acme.test", false)
            .await?;
        w.service
            .admin(&["user", "add", "--email", "lin@acme.test"], None)
            .await?;
        let base = w.base().to_string();
        let app = register_client(&w, "Acme Dashboard", false).await?;
        let cb = app.redirect_uri.clone();

        // No session: sign in first, then the consent page.
        let (url, verifier) = authorize_url(&base, &app, "identity read", "s1");
        w.b.go(&url).await?;
        w.sso_sign_in("lin@acme.test", "acme").await?;
        w.b.wait_url("the consent page", |u| u.contains("/oauth/authorize?"))
            .await?;
        w.b.page("consent", "Authorize Acme Dashboard").await?;
        w.b.press("Allow Acme Dashboard").await?;
        let back = w.b.wait_url("the client", |u| u.starts_with(&cb)).await?;
        let q = query_of(&back);
        ensure!(q.get("state").map(String::as_str) == Some("s1"), "{back}");
        let tokens = exchange(&base, &app, &q["code"], &verifier).await?;
        ensure!(
            tokens["access_token"].is_string() && tokens["scope"] == "identity read",
            "{tokens}"
        );

        // Remembered consent: straight back with a code.
        let (url, _) = authorize_url(&base, &app, "identity", "s2");
        w.b.go(&url).await?;
        let back = w.b.wait_url("the client", |u| u.starts_with(&cb)).await?;
        ensure!(query_of(&back).contains_key("code"), "{back}");

        // Wider scopes ask again; Deny answers access_denied.
        let (url, _) = authorize_url(&base, &app, "identity read write", "s3");
        w.b.go(&url).await?;
        w.b.page("consent-wider", "Authorize Acme Dashboard")
            .await?;
        ensure!(
            w.b.text().await?.contains("write"),
            "the new scope is named"
        );
        w.b.press("Deny").await?;
        let back = w.b.wait_url("the client", |u| u.starts_with(&cb)).await?;
        let q = query_of(&back);
        ensure!(
            q.get("error").map(String::as_str) == Some("access_denied")
                && q.get("state").map(String::as_str) == Some("s3"),
            "{back}"
        );

        // A trusted client: no consent page.
        let first_party = register_client(&w, "Acme Console", true).await?;
        let (url, verifier) = authorize_url(&base, &first_party, "identity", "s4");
        w.b.go(&url).await?;
        let back = w.b.wait_url("the client", |u| u.starts_with(&cb)).await?;
        let tokens = exchange(&base, &first_party, &query_of(&back)["code"], &verifier).await?;
        ensure!(tokens["access_token"].is_string(), "{tokens}");

        // The authorizations page lists the untrusted client and revokes it.
        w.b.go(&format!("{base}/account/authorizations")).await?;
        w.b.page("authorizations", "Authorized applications")
            .await?;
        w.b.press("Revoke access for Acme Dashboard").await?;
        w.b.wait_url("the list", |u| u.ends_with("/account/authorizations"))
            .await?;
        ensure!(
            !w.b.text()
                .await?
                .contains("Revoke access for Acme Dashboard"),
            "revoked"
        );
        Ok(())
    });
}

/// A password sign-in that goes on to a trusted client: the password form's answer
/// redirects through `/oauth/authorize` to the client's origin, which the sign-in page's
/// policy must allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_sign_in_straight_to_a_trusted_client() {
    journey!("password-oauth", |w| {
        w.service
            .user_with_password("pat@elsewhere.test", "correct horse battery")
            .await?;
        let base = w.base().to_string();
        let app = register_client(&w, "Acme Console", true).await?;
        let (url, verifier) = authorize_url(&base, &app, "identity", "p1");
        w.b.go(&url).await?;
        w.password_sign_in("pat@elsewhere.test", "correct horse battery")
            .await?;
        let back =
            w.b.wait_url("the client", |u| u.starts_with(&app.redirect_uri))
                .await?;
        let tokens = exchange(&base, &app, &query_of(&back)["code"], &verifier).await?;
        ensure!(tokens["access_token"].is_string(), "{tokens}");
        Ok(())
    });
}

/// First SSO login of a new email: signed in but pending; the welcome link from the outbox
/// activates the account; OAuth shows "activate your account" until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sso_login_then_the_welcome_link() {
    journey!("welcome", |w| {
        w.outside
            .idp(&w.service, "acme", "acme.test", false)
            .await?;
        let base = w.base().to_string();
        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("new@acme.test", "acme").await?;
        w.b.wait_url("return_to", |u| u.ends_with("/account/authorizations"))
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["status"] == "pending" && s["sso"] == true, "{s}");

        let app = register_client(&w, "Acme Dashboard", false).await?;
        let (url, _) = authorize_url(&base, &app, "identity", "w1");
        w.b.go(&url).await?;
        w.b.page("activate-first", "Activate your account").await?;

        let link = w.service.outbox_link("new@acme.test").await?;
        w.b.go(&link).await?;
        w.b.page("welcome", "Activate your account").await?;
        w.b.press("Activate my account").await?;
        w.b.page("welcome-done", "Your account is active").await?;
        let s = w.b.session(&base).await?;
        ensure!(s["status"] == "active", "{s}");
        // The link worked once.
        w.b.go(&link).await?;
        w.b.page("welcome-used", "Link expired").await?;
        Ok(())
    });
}

/// An account with a password meets its organisation's SSO: the upgrade page asks for the
/// password once; confirming signs in under SSO. Another declines and keeps its password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_account_upgrades_to_sso_or_declines() {
    journey!("upgrade", |w| {
        w.outside
            .idp(&w.service, "acme", "acme.test", false)
            .await?;
        w.service
            .user_with_password("max@acme.test", "max's old password")
            .await?;
        w.service
            .user_with_password("eve@acme.test", "eve's old password")
            .await?;
        let base = w.base().to_string();

        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("max@acme.test", "acme").await?;
        w.b.wait_url("the upgrade page", |u| u.ends_with("/sso/upgrade"))
            .await?;
        w.b.page("upgrade", "Move your account to single sign-on")
            .await?;
        w.b.fill("#password", "not it").await?;
        w.b.press("Move to single sign-on").await?;
        w.b.page(
            "upgrade-wrong-password",
            "Move your account to single sign-on",
        )
        .await?;
        ensure!(
            w.b.text().await?.contains("That password is not right."),
            "the error is said"
        );
        w.b.fill("#password", "max's old password").await?;
        w.b.press("Move to single sign-on").await?;
        w.b.wait_url("return_to", |u| u.ends_with("/account/authorizations"))
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["email"] == "max@acme.test" && s["sso"] == true, "{s}");

        // Eve declines (a fresh browser: nobody signed in).
        w.fresh_browser("upgrade-decline").await?;
        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("eve@acme.test", "acme").await?;
        w.b.wait_url("the upgrade page", |u| u.ends_with("/sso/upgrade"))
            .await?;
        w.b.press("Not now").await?;
        w.b.page("upgrade-declined", "Not moved to single sign-on")
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["error"] == "no_session", "{s}");
        w.b.go(&format!("{base}/login")).await?;
        w.password_sign_in("eve@acme.test", "eve's old password")
            .await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["email"] == "eve@acme.test" && s["sso"] == false, "{s}");
        Ok(())
    });
}

/// Password sign-in, a wrong password, a domain with no SSO, a reset through the outbox
/// link, sign-out (the old cookie is then worth nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_sign_in_reset_and_sign_out() {
    journey!("password", |w| {
        w.service
            .user_with_password("pat@elsewhere.test", "correct horse battery")
            .await?;
        let base = w.base().to_string();
        w.b.go(&format!("{base}/login")).await?;
        w.password_sign_in("pat@elsewhere.test", "wrong horse")
            .await?;
        w.b.page("wrong-password", "Sign in").await?;
        ensure!(
            w.b.text()
                .await?
                .contains("The email or password is not right."),
            "wrong password said"
        );
        w.b.fill("#email", "nobody@unknown.test").await?;
        w.b.press("Continue").await?;
        w.b.page("no-sso-domain", "Sign in").await?;
        ensure!(
            w.b.text()
                .await?
                .contains("unknown.test does not sign in through single sign-on here"),
            "unknown domain said"
        );

        // Reset.
        w.b.click("a[href='/account/password/reset']").await?;
        w.b.page("reset-ask", "Reset your password").await?;
        w.b.fill("#email", "pat@elsewhere.test").await?;
        w.b.press("Send me a link").await?;
        w.b.page("reset-sent", "Check your email").await?;
        let link = w.service.outbox_link("pat@elsewhere.test").await?;
        w.b.go(&link).await?;
        w.b.page("reset-choose", "Choose a new password").await?;
        w.b.fill("#password", "a brand new password").await?;
        w.b.fill("#confirm", "a brand new password").await?;
        w.b.press("Set password").await?;
        w.b.page("reset-done", "Password changed").await?;
        w.b.go(&link).await?;
        w.b.page("reset-used", "Link expired").await?;

        w.b.go(&format!("{base}/login")).await?;
        w.password_sign_in("pat@elsewhere.test", "a brand new password")
            .await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        let cookie = w.b.cookie("identity_session").await?;
        w.b.go(&format!("{base}/account/authorizations")).await?;
        w.b.press("Sign out").await?;
        w.b.wait_url("the sign-in page", |u| u.ends_with("/login"))
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["error"] == "no_session", "{s}");
        let (status, body) = http(
            "GET",
            &format!("{base}/session"),
            &[("Cookie", &format!("identity_session={cookie}"))],
            None,
        )
        .await?;
        ensure!(status == 401, "the old cookie still works: {status} {body}");
        Ok(())
    });
}

/// "Sign out everywhere" on the account page: the session of another browser ends too;
/// an application the person authorized keeps its access (its refresh token still works).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_everywhere_ends_the_other_browsers_session_and_keeps_grants() {
    journey!("signout-everywhere", |w| {
        w.service
            .user_with_password("pat@elsewhere.test", "correct horse battery")
            .await?;
        let base = w.base().to_string();
        w.b.go(&format!("{base}/login")).await?;
        w.password_sign_in("pat@elsewhere.test", "correct horse battery")
            .await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        let laptop = w.b.cookie("identity_session").await?;
        let cli = register_client(&w, "Acme CLI", false).await?;
        let d = device_request(&base, &cli).await?;
        w.b.go(d["verification_uri_complete"].as_str().ok_or("uri")?)
            .await?;
        w.b.press("Continue").await?;
        w.b.press("Approve").await?;
        w.b.page("everywhere-device", "Device connected").await?;
        let tokens = device_poll(&base, &cli, d["device_code"].as_str().unwrap()).await?;
        let refresh = tokens["refresh_token"].as_str().ok_or("refresh token")?;

        w.fresh_browser("signout-everywhere-phone").await?;
        w.b.go(&format!("{base}/login")).await?;
        w.password_sign_in("pat@elsewhere.test", "correct horse battery")
            .await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        w.b.page("everywhere-account", "Authorized applications")
            .await?;
        w.b.press("Sign out everywhere").await?;
        w.b.wait_url("the sign-in page", |u| u.ends_with("/login"))
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["error"] == "no_session", "this browser: {s}");
        let (status, body) = http(
            "GET",
            &format!("{base}/session"),
            &[("Cookie", &format!("identity_session={laptop}"))],
            None,
        )
        .await?;
        ensure!(
            status == 401,
            "the other browser's session ended: {status} {body}"
        );
        let (status, body) = http(
            "POST",
            &format!("{base}/oauth/token"),
            &[],
            Some(&form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", &cli.id),
                ("client_secret", &cli.secret),
            ])),
        )
        .await?;
        ensure!(
            status == 200,
            "the application keeps its access: {status} {body}"
        );
        Ok(())
    });
}

/// Signing out of a session that came through an IdP with a Single Logout endpoint: our
/// session ends, the browser carries our signed LogoutRequest to the IdP, which ends its
/// own and posts back a signed LogoutResponse; the person lands on "Signed out".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_of_an_sso_session_reaches_the_idp_and_comes_back_signed_out() {
    journey!("slo", |w| {
        let slo = format!("{}/idp/acme/slo", w.outside.base);
        w.outside
            .idp_with(&w.service, "acme", "acme.test", &["--slo-url", &slo])
            .await?;
        let base = w.base().to_string();
        w.b.go(&format!("{base}/login?return_to=/account/authorizations"))
            .await?;
        w.sso_sign_in("ada@acme.test", "acme").await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        w.b.page("slo-signed-in", "Authorized applications").await?;
        w.b.press("Sign out").await?;
        let back = format!("{base}/sso/slo");
        w.b.wait_url("back from the IdP", |u| u.starts_with(&back))
            .await?;
        w.b.page("slo-signed-out", "Signed out").await?;
        ensure!(
            w.b.text().await?.contains("signed out here and at"),
            "the IdP confirmed"
        );
        let seen = w.outside.state.logouts.lock().unwrap().clone();
        ensure!(
            seen == ["ada@acme.test"],
            "the IdP got our LogoutRequest for ada: {seen:?}"
        );
        let s = w.b.session(&base).await?;
        ensure!(s["error"] == "no_session", "{s}");
        Ok(())
    });
}

/// Offboarding a departed employee: the operator blocks the account, then "logs in as" it
/// through a single-use link and the code printed beside it: every page carries the banner,
/// authorizing a device is refused, every request is in the audit log with who (as said and
/// as the store knew the command's user), as whom and why; the app is handed over to a
/// colleague; the link works once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_as_a_departed_employee_to_hand_over_their_apps() {
    journey!("impersonate", |w| {
        let s = &w.service;
        s.user_with_password("pat@elsewhere.test", "correct horse battery")
            .await?;
        s.user_with_password("sam@elsewhere.test", "another good password")
            .await?;
        s.admin(
            &[
                "app",
                "add",
                "--name",
                "pats-app",
                "--owner",
                "pat@elsewhere.test",
            ],
            None,
        )
        .await?;
        s.admin(&["user", "block", "pat@elsewhere.test"], None)
            .await?;
        let base = w.base().to_string();
        let cli = register_client(&w, "Acme CLI", false).await?;
        let link = w
            .service
            .admin(
                &[
                    "user",
                    "impersonate",
                    "pat@elsewhere.test",
                    "--reason",
                    "Pat left; hand over pats-app",
                    "--by",
                    "ops@elsewhere.test",
                ],
                None,
            )
            .await?;
        let made = link;
        let link = made["link"].as_str().ok_or("link")?.to_string();
        let code = made["code"].as_str().ok_or("code")?.to_string();
        ensure!(!link.contains(&code), "the code is not in the link");
        let operator = made["operator"].as_str().ok_or("operator")?.to_string();
        // The embedded store of `identity serve`: the local user; through the local stack
        // (DynamoDB): the AWS identity the command ran as.
        ensure!(
            operator.starts_with("local uid ") || operator.starts_with("arn:aws:"),
            "{operator}"
        );
        w.b.go(&link).await?;
        w.b.page("impersonate-confirm", "Sign in as someone else")
            .await?;
        ensure!(
            w.b.text().await?.contains("Pat left; hand over pats-app"),
            "the reason is shown"
        );
        w.b.fill("#code", &code).await?;
        w.b.press("Sign in as pat@elsewhere.test").await?;
        w.b.wait_url("the account page", |u| {
            u.ends_with("/account/authorizations")
        })
        .await?;
        w.b.page("impersonate-account", "Authorized applications")
            .await?;
        let text = w.b.text().await?;
        ensure!(
            text.contains("Signed in as pat@elsewhere.test by admin ops@elsewhere.test"),
            "the banner: {text}"
        );

        // No credentials are minted in such a session.
        let d = device_request(&base, &cli).await?;
        w.b.go(d["verification_uri_complete"].as_str().ok_or("uri")?)
            .await?;
        w.b.press("Continue").await?;
        w.b.page("impersonate-device", "Connect Acme CLI").await?;
        ensure!(
            w.b.text()
                .await?
                .contains("Signed in as pat@elsewhere.test"),
            "banner on every page"
        );
        w.b.press("Approve").await?;
        w.b.page("impersonate-refused", "Not while signed in as someone else")
            .await?;
        let answer = device_poll(&base, &cli, d["device_code"].as_str().unwrap()).await?;
        ensure!(answer["error"] == "authorization_pending", "{answer}");

        // From the same session, the app goes to a colleague; the audit log has it all.
        w.b.go(&format!("{base}/account/apps")).await?;
        w.b.page("impersonate-apps", "Your apps").await?;
        w.b.fill("input[name=new_owner]", "sam@elsewhere.test")
            .await?;
        w.b.press("Transfer pats-app").await?;
        w.b.page("impersonate-transferred", "App transferred")
            .await?;
        let app = s.admin(&["app", "show", "pats-app"], None).await?;
        ensure!(app["owner"] == "sam@elsewhere.test", "{app}");
        let audit = s.admin(&["audit"], None).await?;
        let entries = audit["entries"].as_array().ok_or("entries")?;
        for action in [
            "impersonation started",
            "GET /account/authorizations",
            "POST /device",
        ] {
            ensure!(
                entries.iter().any(|e| e["action"] == action
                    && e["by"] == "ops@elsewhere.test"
                    && e["as"] == "pat@elsewhere.test"
                    && e["reason"] == "Pat left; hand over pats-app"
                    && e["operator"] == operator.as_str()),
                "no audit entry for {action}: {audit}"
            );
        }
        // The link worked once.
        w.fresh_browser("impersonate-again").await?;
        w.b.go(&link).await?;
        w.b.page("impersonate-used", "Link expired").await?;
        // A link with a guessed code signs nobody in, and is spent.
        let another = w
            .service
            .admin(
                &[
                    "user",
                    "impersonate",
                    "pat@elsewhere.test",
                    "--reason",
                    "again",
                ],
                None,
            )
            .await?;
        let another = another["link"].as_str().ok_or("link")?.to_string();
        w.b.go(&another).await?;
        w.b.fill("#code", "BCDF-GHJK").await?;
        w.b.press("Sign in as pat@elsewhere.test").await?;
        w.b.page("impersonate-wrong-code", "Link expired").await?;
        w.b.go(&another).await?;
        w.b.page("impersonate-spent", "Link expired").await?;
        Ok(())
    });
}

async fn device_request(base: &str, client: &OAuthClient) -> R<Value> {
    let (status, body) = http(
        "POST",
        &format!("{base}/oauth/device/authorize"),
        &[],
        Some(&form(&[
            ("client_id", &client.id),
            ("client_secret", &client.secret),
            ("scope", "identity"),
        ])),
    )
    .await?;
    ensure!(status == 200, "device authorize: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

async fn device_poll(base: &str, client: &OAuthClient, device_code: &str) -> R<Value> {
    let (_, body) = http(
        "POST",
        &format!("{base}/oauth/token"),
        &[],
        Some(&form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ])),
    )
    .await?;
    Ok(serde_json::from_str(&body)?)
}

/// The device flow's page: sign in, type the code the device shows, approve; the device
/// gets its tokens. A second device is denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_page_approve_and_deny() {
    journey!("device", |w| {
        w.service
            .user_with_password("pat@elsewhere.test", "correct horse battery")
            .await?;
        let base = w.base().to_string();
        let cli = register_client(&w, "Acme CLI", false).await?;
        let d = device_request(&base, &cli).await?;
        let code = d["user_code"].as_str().ok_or("user_code")?;

        w.b.go(&format!("{base}/device")).await?;
        w.password_sign_in("pat@elsewhere.test", "correct horse battery")
            .await?;
        w.b.wait_url("the device page", |u| u.ends_with("/device"))
            .await?;
        w.b.page("device-code", "Connect a device").await?;
        w.b.fill("#user_code", &code.to_lowercase().replace('-', " "))
            .await?;
        w.b.press("Continue").await?;
        w.b.page("device-confirm", "Connect Acme CLI").await?;
        ensure!(w.b.text().await?.contains(code), "the code is shown");
        w.b.press("Approve").await?;
        w.b.page("device-approved", "Device connected").await?;
        let tokens = device_poll(&base, &cli, d["device_code"].as_str().unwrap()).await?;
        ensure!(tokens["access_token"].is_string(), "{tokens}");

        let d = device_request(&base, &cli).await?;
        let link = d["verification_uri_complete"]
            .as_str()
            .ok_or("complete uri")?;
        // The link fills the code in; nothing is looked up until the person continues.
        w.b.go(link).await?;
        w.b.page("device-code-filled", "Connect a device").await?;
        let filled = w.b.value("#user_code").await?;
        ensure!(filled == d["user_code"], "the link's code: {filled}");
        w.b.press("Continue").await?;
        w.b.page("device-confirm-2", "Connect Acme CLI").await?;
        w.b.press("Deny").await?;
        w.b.page("device-denied", "Device not connected").await?;
        let answer = device_poll(&base, &cli, d["device_code"].as_str().unwrap()).await?;
        ensure!(answer["error"] == "access_denied", "{answer}");
        Ok(())
    });
}

/// Add-on SSO: a collaborator of the app opens the add-on and lands on the partner signed
/// in (the page auto-posts under its own policy); a stranger sees why not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addon_sso_for_a_collaborator_and_not_for_a_stranger() {
    journey!("addon", |w| {
        let s = &w.service;
        s.user_with_password("owner@elsewhere.test", "owner's password")
            .await?;
        s.user_with_password("collab@elsewhere.test", "collab's password")
            .await?;
        s.user_with_password("stranger@elsewhere.test", "stranger's password")
            .await?;
        s.admin(
            &[
                "app",
                "add",
                "--name",
                "acme-app",
                "--owner",
                "owner@elsewhere.test",
            ],
            None,
        )
        .await?;
        s.admin(
            &[
                "app",
                "collaborator",
                "add",
                "acme-app",
                "collab@elsewhere.test",
                "--role",
                "collaborator",
            ],
            None,
        )
        .await?;
        let sso_url = s.partner_sso_url(&w.outside);
        let addon = s
            .admin(
                &[
                    "addon",
                    "add",
                    "--app",
                    "acme-app",
                    "--name",
                    "acme-db",
                    "--sso-url",
                    &sso_url,
                ],
                None,
            )
            .await?;
        let addon_id = addon["addon_id"].as_str().ok_or("addon_id")?.to_string();
        let base = w.base().to_string();
        let addon_url = format!("{base}/addons/{addon_id}/sso");

        w.b.go(&addon_url).await?;
        w.password_sign_in("collab@elsewhere.test", "collab's password")
            .await?;
        w.b.wait_url("the partner", |u| u.ends_with("/example-partner/sso"))
            .await?;
        let text = w.b.text().await?;
        ensure!(text.contains("collab@elsewhere.test"), "partner: {text}");

        w.fresh_browser("addon-stranger").await?;
        w.b.go(&addon_url).await?;
        w.password_sign_in("stranger@elsewhere.test", "stranger's password")
            .await?;
        w.b.wait_url("the add-on page", |u| u.ends_with("/sso"))
            .await?;
        w.b.page("addon-refused", "No access to this add-on")
            .await?;
        Ok(())
    });
}

/// An IdP that requires MFA signs a person in with a password only: the page says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_required_without_mfa_says_why() {
    journey!("mfa", |w| {
        w.outside
            .idp(&w.service, "strict", "strict.test", true)
            .await?;
        let base = w.base().to_string();
        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("kim@strict.test", "strict").await?;
        w.b.wait_url("the ACS answer", |u| u.ends_with("/sso/acs"))
            .await?;
        w.b.page("mfa-required", "Sign-in refused").await?;
        ensure!(
            w.b.text().await?.contains("multi-factor authentication"),
            "MFA named"
        );
        let s = w.b.session(&base).await?;
        ensure!(s["error"] == "no_session", "{s}");
        Ok(())
    });
}

/// SAML login CSRF: an attacker starts a login of their own, signs in at their IdP, keeps
/// the SAMLResponse and has the victim's browser post it from another site. The victim's
/// browser did not start that login: refused, and the victim is not signed in as the
/// attacker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saml_response_for_another_browsers_login_is_refused() {
    journey!("saml-csrf", |w| {
        w.outside
            .idp(&w.service, "acme", "acme.test", false)
            .await?;
        let base = w.base().to_string();
        // The attacker's login, started outside the victim's browser.
        let (status, head, _) =
            http_raw("GET", &format!("{base}/sso/login?idp=acme"), &[], None).await?;
        ensure!(status == 302, "sso/login: {status}");
        let location = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("location: ")
                    .then(|| l[10..].trim().to_string())
            })
            .ok_or("no Location")?;
        let encoded = query_of(&location)
            .remove("SAMLRequest")
            .ok_or("no SAMLRequest")?;
        let request_id = identity_cli::dev_idp::request_id(&encoded, &w.outside.state.sp)
            .map_err(|e| e.to_string())?;
        *w.outside.state.stash.lock().unwrap() =
            w.outside
                .signed_response("acme", "mallory@acme.test", &request_id)?;

        w.b.go(&format!(
            "http://localhost:{}/elsewhere/saml",
            w.outside.port
        ))
        .await?;
        w.b.press("See the photos").await?;
        w.b.page("saml-csrf-refused", "Sign-in refused").await?;
        ensure!(
            w.b.text().await?.contains("started in another browser"),
            "the reason is said"
        );
        let s = w.b.session(&base).await?;
        ensure!(s["error"] == "no_session", "signed in as the attacker: {s}");
        Ok(())
    });
}

/// An account made before its organisation's IdP was registered is not taken over by the
/// IdP's first login: the person is told to check their email, follows the link, and from
/// then on signs in through the IdP. An IdP-initiated login (the development IdP's page
/// opened directly) lands on a page naming the account before going on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_account_moves_to_sso_by_email_and_idp_initiated_login_names_the_account() {
    journey!("link", |w| {
        w.service
            .admin(&["user", "add", "--email", "early@acme.test"], None)
            .await?;
        w.outside
            .idp(&w.service, "acme", "acme.test", false)
            .await?;
        let base = w.base().to_string();
        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("early@acme.test", "acme").await?;
        w.b.page("check-email", "Check your email").await?;
        let s = w.b.session(&base).await?;
        ensure!(
            s["error"] == "no_session",
            "signed in before confirming: {s}"
        );
        let link = w.service.outbox_link("early@acme.test").await?;
        ensure!(link.contains("/sso/link/"), "{link}");
        w.b.go(&link).await?;
        w.b.page("link", "Move your account to single sign-on")
            .await?;
        w.b.press("Move to single sign-on").await?;
        w.b.page("link-done", "Your account uses single sign-on")
            .await?;
        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("early@acme.test", "acme").await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["email"] == "early@acme.test" && s["idp"] == "acme", "{s}");

        w.fresh_browser("idp-initiated").await?;
        w.b.go(&format!("{base}/dev-idp/sso")).await?;
        w.b.fill("#email", "walk-in@dev.test").await?;
        w.b.press("Sign in").await?;
        w.b.press("Continue to the service").await?;
        w.b.page("idp-initiated", "Continue to your account")
            .await?;
        ensure!(
            w.b.text().await?.contains("walk-in@dev.test"),
            "the account is named"
        );
        // No session until the person continues from this page.
        let (status, _) = http(
            "GET",
            &format!("{base}/session"),
            &[(
                "Cookie",
                &format!(
                    "identity_session={}",
                    w.b.cookie("identity_session").await.unwrap_or_default()
                ),
            )],
            None,
        )
        .await?;
        ensure!(status == 401, "a session before Continue: {status}");
        w.b.press("Continue as walk-in@dev.test").await?;
        w.b.page("idp-initiated-on", "Authorized applications")
            .await?;
        let s = w.b.session(&base).await?;
        ensure!(s["email"] == "walk-in@dev.test", "{s}");
        Ok(())
    });
}

/// Ten wrong passwords pause sign-in for the account: the next answer (the right password
/// too) is the "Too many attempts" page, which says when to try again and how to reset the
/// password; a reset through the emailed link lifts the pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_pause_sign_in_until_a_reset() {
    journey!("throttle", |w| {
        w.service
            .user_with_password("sam@elsewhere.test", "correct horse battery")
            .await?;
        let base = w.base().to_string();
        w.b.go(&format!("{base}/login")).await?;
        for _ in 0..9 {
            w.password_sign_in("sam@elsewhere.test", "a guess").await?;
            w.b.wait_url("the sign-in page", |u| u.ends_with("/login"))
                .await?;
        }
        w.password_sign_in("sam@elsewhere.test", "a guess").await?;
        w.b.page("throttled", "Too many attempts").await?;
        w.b.go(&format!("{base}/login")).await?;
        w.password_sign_in("sam@elsewhere.test", "correct horse battery")
            .await?;
        w.b.page("throttled-right-password", "Too many attempts")
            .await?;
        let text = w.b.text().await?;
        ensure!(text.contains("try again in 15 minutes"), "{text}");
        w.b.click("a[href='/account/password/reset']").await?;
        w.b.page("throttle-reset-ask", "Reset your password")
            .await?;
        w.b.fill("#email", "sam@elsewhere.test").await?;
        w.b.press("Send me a link").await?;
        w.b.page("throttle-reset-sent", "Check your email").await?;
        let link = w.service.outbox_link("sam@elsewhere.test").await?;
        w.b.go(&link).await?;
        w.b.fill("#password", "a brand new password").await?;
        w.b.fill("#confirm", "a brand new password").await?;
        w.b.press("Set password").await?;
        w.b.page("throttle-reset-done", "Password changed").await?;
        w.b.go(&format!("{base}/login")).await?;
        w.password_sign_in("sam@elsewhere.test", "a brand new password")
            .await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        Ok(())
    });
}

/// With `IDENTITY_LIMIT_PASSWORD=10,100,30` (a total of 30 failures in the window), a
/// flood of failed sign-ins for made-up emails from the person's own address does not keep
/// them out: the browser they signed in with before signs in with the right password at
/// once. A browser the account does not know is asked for more: the page's proof of work
/// (solved by its script in Chromium) before any password is checked, a wrong password
/// gets no session, and the right one, with its work, signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_failures_from_strangers_leaves_a_known_browser_signing_in() {
    journey!(
        "surge",
        env = &[("IDENTITY_LIMIT_PASSWORD", "10,100,30")],
        |w| {
            w.service
                .user_with_password("kim@elsewhere.test", "correct horse battery")
                .await?;
            let base = w.base().to_string();
            w.b.go(&format!("{base}/login")).await?;
            w.password_sign_in("kim@elsewhere.test", "correct horse battery")
                .await?;
            w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
                .await?;
            w.b.press("Sign out").await?;
            w.b.wait_url("the sign-in page", |u| u.ends_with("/login"))
                .await?;
            // 40 failed sign-ins for made-up emails, from the same address, as a script
            // sends them.
            let mut statuses = Vec::new();
            for i in 0..40 {
                let body = format!("email=made-up-{i}%40elsewhere.test&password=guess");
                let (status, _) = http(
                    "POST",
                    &format!("{base}/login"),
                    &[("Origin", &base), ("Sec-Fetch-Site", "same-origin")],
                    Some(&body),
                )
                .await?;
                statuses.push(status);
            }
            ensure!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
            // The person's browser: the right password signs in, nothing asked.
            w.b.go(&format!("{base}/login")).await?;
            w.password_sign_in("kim@elsewhere.test", "correct horse battery")
                .await?;
            w.b.wait_url("signed in through the surge", |u| {
                u.ends_with("/account/authorizations")
            })
            .await?;
            let s = w.b.session(&base).await?;
            ensure!(s["email"] == "kim@elsewhere.test", "{s}");
            // A stranger's browser: asked for a proof of work first.
            w.fresh_browser("surge-stranger").await?;
            w.b.go(&format!("{base}/login")).await?;
            w.password_sign_in("kim@elsewhere.test", "a guess").await?;
            w.b.page("surge-work-asked", "Sign in").await?;
            let text = w.b.text().await?;
            ensure!(
                text.contains("Many sign-ins are failing right now"),
                "{text}"
            );
            // The script does the work when the form is sent; the wrong password is
            // then checked and refused.
            w.b.fill("#password", "another guess").await?;
            w.b.press("Continue").await?;
            w.b.page("surge-wrong-with-work", "Sign in").await?;
            let text = w.b.text().await?;
            ensure!(
                text.contains("The email or password is not right."),
                "{text}"
            );
            let s = w.b.session(&base).await?;
            ensure!(s["error"] == "no_session", "no session for a stranger: {s}");
            // The person on a new browser: the right password, with its work, signs in.
            w.b.go(&format!("{base}/login")).await?;
            w.password_sign_in("kim@elsewhere.test", "correct horse battery")
                .await?;
            w.b.page("surge-work-asked-again", "Sign in").await?;
            w.b.fill("#password", "correct horse battery").await?;
            w.b.press("Continue").await?;
            w.b.wait_url("signed in with its work", |u| {
                u.ends_with("/account/authorizations")
            })
            .await?;
            let s = w.b.session(&base).await?;
            ensure!(s["email"] == "kim@elsewhere.test", "{s}");
            Ok(())
        }
    );
}

// After the macros and the world it uses.
#[path = "cli_login.rs"]
mod cli_login;
