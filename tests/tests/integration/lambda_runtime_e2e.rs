//! The deployed entry points, end to end: every function's real `bootstrap` (as `sam build`
//! makes it, from `.aws-sam/build/`) runs against a Lambda Runtime API emulator
//! (`identity_tests::runtime_api`), with DynamoDB Local and moto (Secrets Manager) behind
//! it, configured as `template.yaml` configures it in AWS. Requests are API Gateway HTTP API
//! events, sent to the function the template routes them to.
//!
//! The test command (`tests/run.sh`) runs `sam build` before the tests; missing bootstraps
//! are a failure, unless `IDENTITY_TEST_SKIP_SERVICES=1` (then these tests say they were
//! skipped).
//!
//! Flows: the JWT bearer grant, and authorize → consent → token exchange → refresh →
//! introspection, each token verified against the JWKS the oauth-token bootstrap publishes.
//! Then SP-initiated SAML SSO: `/sso/login` (a signed AuthnRequest), an IdP-signed response
//! posted to `/sso/acs` (validated by libxmlsec1 linked statically into the bootstrap), and
//! `/session` with the cookie it sets; the same response again is refused as a replay.

use std::path::{Path, PathBuf};
use std::process::Command;

use identity_shared::AppState;
use identity_shared::accounts::AccountStatus;
use identity_shared::oauth::{NewClient, OAuthClients, pkce};
use identity_tests::jwt_suite::{TestKey, ci_client, claims};
use identity_tests::oauth_suite::{basic_auth as basic, form_body as form};
use identity_tests::runtime_api::{self, ApiRequest, ApiResponse, Bootstrap, Deployment, LocalAws};
use identity_tests::template;
use serde_json::Value;

const HOST: &str = "id.example.com";
const BASE: &str = "https://id.example.com";
const REDIRECT: &str = "https://app.example.com/callback";

// ---------------------------------------------------------------------------------------
// The deployment: tables and secrets on the local stand-ins, the five bootstraps
// ---------------------------------------------------------------------------------------

struct Env {
    deployment: Deployment,
    /// IAM over every AWS call the bootstraps make: each has its own role, as deployed.
    judge: std::sync::Arc<identity_tests::stack::Judge>,
    /// The same store and secrets the bootstraps use, for seeding and for checks.
    state: AppState,
}

/// Fresh tables and secrets on the local stand-ins, and every bootstrap started with the
/// template's configuration pointing at them.
async fn deploy() -> Option<Env> {
    // Resolved first: without bootstraps there is nothing to run (a failure under run.sh).
    identity_tests::runtime_api::bootstraps()?;
    let local = LocalAws::provision_judged(BASE).await?;
    let deployment = Deployment::start(HOST, &local).await?;
    Some(Env {
        deployment,
        judge: local.judge.clone().expect("judged"),
        state: local.state,
    })
}

/// The value of a hidden input in a page.
fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(
        html[start..start + end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn query_of(url: &str) -> Vec<(String, String)> {
    let (_, q) = url.split_once('?').unwrap_or((url, ""));
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                identity_shared::http::fields::decode_component(k).unwrap(),
                identity_shared::http::fields::decode_component(v).unwrap(),
            )
        })
        .collect()
}

fn param(q: &[(String, String)], name: &str) -> String {
    q.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {q:?}"))
}

/// An access token checked against the JWKS the oauth-token bootstrap publishes, with
/// jsonwebtoken (not our verifier).
fn verify_with_jwks(jwks: &Value, token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("the token's kid is in the JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[BASE]);
    validation.set_audience(&[BASE]);
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("verifies with the published JWKS")
    .claims
}

fn assert_status(r: &ApiResponse, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
}

// ---------------------------------------------------------------------------------------
// The flows
// ---------------------------------------------------------------------------------------

/// The steps of the end-to-end run, one method each; every step goes through the
/// deployment's routes to a bootstrap.
struct Flows {
    env: Env,
    /// Values that must never appear in any function's log output.
    secrets_seen: Vec<String>,
}

impl Flows {
    async fn jwks(&mut self) -> Value {
        let r = self
            .env
            .deployment
            .send(ApiRequest::get("/.well-known/jwks.json"))
            .await;
        assert_status(&r, 200, "JWKS");
        r.json()
    }

    /// RFC 7523: a CI job's assertion for a pre-authorized user, through jwt-grant.
    async fn jwt_grant(&mut self) {
        let key = TestKey::ec();
        let ci = ci_client(&self.env.state.store, &key, "ci@example.com").await;
        let assertion = key.sign(&claims(
            &ci.client.client_id,
            "ci@example.com",
            BASE,
            identity_tests::real_now(),
        ));
        let r = self
            .env
            .deployment
            .send(ApiRequest::post("/oauth/jwt/token").form(form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &assertion),
            ])))
            .await;
        assert_status(&r, 200, "JWT bearer grant");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let body = r.json();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["instance_url"], BASE);
        let token = body["access_token"].as_str().unwrap().to_string();
        let jwks = self.jwks().await;
        let claims = verify_with_jwks(&jwks, &token);
        assert_eq!(claims["sub"], ci.user.id.as_str());
        assert_eq!(claims["client_id"], ci.client.client_id.as_str());

        // The same assertion again: its jti was consumed.
        let again = self
            .env
            .deployment
            .send(ApiRequest::post("/oauth/jwt/token").form(form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &assertion),
            ])))
            .await;
        assert_status(&again, 400, "replayed assertion");
        assert_eq!(again.json()["error"], "invalid_grant");
        self.secrets_seen.extend([assertion, token]);
    }

    /// The code flow with PKCE through oauth-authorize (consent page, allow) and
    /// oauth-token (exchange, refresh, introspection), for a person signed in at sso-acs.
    async fn authorize_and_exchange(&mut self) {
        let state = self.env.state.clone();
        let cookie =
            identity_tests::signed_in_cookie(&state, "ada@example.com", AccountStatus::Active)
                .await;
        let (client, secret) = state
            .store
            .create_client(NewClient {
                name: "Dashboard".into(),
                redirect_uris: vec![REDIRECT.into()],
                scopes: vec!["identity".into(), "read".into()],
                trusted: false,
                public: false,
            })
            .await
            .unwrap();
        let secret = secret.unwrap().expose_secret().to_string();

        // The session, as sso-acs sees it.
        let r = self
            .env
            .deployment
            .send(ApiRequest::get("/session").cookie(&cookie))
            .await;
        assert_status(&r, 200, "GET /session");
        assert_eq!(r.json()["email"], "ada@example.com");

        // Authorization request → consent page → allow → back with a code.
        let verifier = "e2e-verifier-e2e-verifier-e2e-verifier-0000001";
        let params = [
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "identity read"),
            ("code_challenge", &pkce::challenge_of(verifier)),
            ("code_challenge_method", "S256"),
            ("state", "e2e-state"),
        ];
        let r = self
            .env
            .deployment
            .send(
                ApiRequest::get(&format!("/oauth/authorize?{}", form(&params)))
                    .header("accept", "text/html")
                    .cookie(&cookie),
            )
            .await;
        assert_status(&r, 200, "consent page");
        let page = r.text();
        let mut fields: Vec<(String, String)> = [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "code_challenge",
            "code_challenge_method",
            "state",
            "csrf",
        ]
        .iter()
        .map(|n| {
            let v = hidden_value(&page, n).unwrap_or_else(|| panic!("no {n} on the page"));
            (n.to_string(), v)
        })
        .collect();
        fields.push(("decision".into(), "allow".into()));
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = self
            .env
            .deployment
            .send(
                ApiRequest::post("/oauth/authorize")
                    .form(form(&fields))
                    .cookie(&cookie),
            )
            .await;
        assert_status(&r, 303, "consent allowed");
        let location = r.header("location").expect("Location").to_string();
        assert!(location.starts_with(REDIRECT), "{location}");
        let q = query_of(&location);
        assert_eq!(param(&q, "state"), "e2e-state");
        assert_eq!(param(&q, "iss"), BASE);
        let code = param(&q, "code");

        // Code exchange at oauth-token (client_secret_basic, PKCE verifier).
        let r = self
            .env
            .deployment
            .send(
                ApiRequest::post("/oauth/token")
                    .header("authorization", &basic(&client.client_id, &secret))
                    .form(form(&[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", verifier),
                    ])),
            )
            .await;
        assert_status(&r, 200, "code exchange");
        let tokens = r.json();
        assert_eq!(tokens["scope"], "identity read");
        let access = tokens["access_token"].as_str().unwrap().to_string();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
        let jwks = self.jwks().await;
        let claims = verify_with_jwks(&jwks, &access);
        assert_eq!(claims["client_id"], client.client_id.as_str());
        assert_eq!(claims["scope"], "identity read");

        // The code is single-use.
        let r = self
            .env
            .deployment
            .send(
                ApiRequest::post("/oauth/token")
                    .header("authorization", &basic(&client.client_id, &secret))
                    .form(form(&[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", verifier),
                    ])),
            )
            .await;
        assert_status(&r, 400, "second use of the code");
        assert_eq!(r.json()["error"], "invalid_grant");

        // The second use revoked the grant: the access token is no longer active.
        let r = self
            .env
            .deployment
            .send(
                ApiRequest::post("/oauth/introspect")
                    .header("authorization", &basic(&client.client_id, &secret))
                    .form(form(&[("token", &access)])),
            )
            .await;
        assert_status(&r, 200, "introspection");
        assert_eq!(r.json()["active"], false, "code reuse revoked the grant");
        let r = self
            .env
            .deployment
            .send(
                ApiRequest::post("/oauth/token")
                    .header("authorization", &basic(&client.client_id, &secret))
                    .form(form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &refresh),
                    ])),
            )
            .await;
        assert_status(&r, 400, "refresh after the grant was revoked");
        self.secrets_seen
            .extend([access, refresh, code, secret, cookie_value(&cookie)]);
    }

    /// SP-initiated SAML SSO through sso-acs: `/sso/login` redirects to the IdP with an
    /// AuthnRequest, the IdP (libxmlsec1-signed, as in the tests) answers it, `/sso/acs`
    /// validates the response inside the static bootstrap and starts the session.
    async fn acs_login(&mut self) {
        use base64::Engine;
        use identity_shared::idps::{Idp, Idps};
        use sso_acs::saml::idp_signer::{IdpSigner, ResponseSpec, Sign};
        use std::io::Read;

        let signer = IdpSigner::generate("e2e IdP").unwrap();
        let idp = Idp {
            id: "acme".into(),
            entity_id: "https://idp.acme.example/saml".into(),
            sso_url: "https://idp.acme.example/sso".into(),
            certificates: vec![signer.certificate_base64()],
            domains: vec!["acme.example".into()],
            team: Some("acme".into()),
            enterprise: None,
            allow_idp_initiated: false,
            require_mfa: false,
            mfa_contexts: vec![],
            want_authn_requests_signed: true,
            slo_url: None,
            any_domain: false,
            development: false,
            generation: String::new(),
            created_at: identity_tests::real_now(),
            version: 1,
        };
        self.env.state.store.add_idp(&idp).await.unwrap();

        let r = self
            .env
            .deployment
            .send(ApiRequest::get("/sso/login?idp=acme&return_to=%2Fsession"))
            .await;
        assert_status(&r, 302, "GET /sso/login");
        let location = r.header("location").unwrap().to_string();
        assert!(
            location.starts_with("https://idp.acme.example/sso?"),
            "{location}"
        );
        // The browser keeps the cookie that binds the login to it, and brings it to the ACS.
        // Under https it is `__Secure-` named: a sibling host or plain http cannot plant it.
        let binding = r
            .cookies
            .iter()
            .find(|c| c.starts_with("__Secure-identity_saml_request="))
            .expect("a login-binding cookie")
            .clone();
        assert!(binding.contains("SameSite=None; Secure"), "{binding}");
        let nonce = r
            .cookies
            .iter()
            .find(|c| c.starts_with("__Host-identity_browser="))
            .expect("the browser nonce the request is sealed to");
        assert!(
            nonce.contains("Path=/;") && nonce.contains("SameSite=None; Secure"),
            "{nonce}"
        );
        let binding = format!(
            "{}; {}",
            nonce.split(';').next().unwrap(),
            binding.split(';').next().unwrap()
        );
        let q = query_of(&location);
        assert_eq!(
            param(&q, "SigAlg"),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        );
        let raw = base64::engine::general_purpose::STANDARD
            .decode(param(&q, "SAMLRequest"))
            .unwrap();
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(raw.as_slice())
            .read_to_string(&mut xml)
            .unwrap();
        let request: samael::schema::AuthnRequest = xml.parse().unwrap();

        let response = signer
            .response(&ResponseSpec {
                issuer: idp.entity_id.clone(),
                destination: format!("{BASE}/sso/acs"),
                audience: format!("{BASE}/sso/metadata"),
                recipient: format!("{BASE}/sso/acs"),
                email: "grace@acme.example".into(),
                in_response_to: Some(request.id.clone()),
                authn_context: None,
                now: identity_tests::real_now(),
                lifetime_secs: 300,
                sign: Sign::Both,
            })
            .unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(response);
        let post = || {
            ApiRequest::post("/sso/acs")
                .form(form(&[
                    ("SAMLResponse", encoded.as_str()),
                    ("RelayState", "/session"),
                ]))
                .cookie(&binding)
        };
        let r = self.env.deployment.send(post()).await;
        assert_status(&r, 303, "POST /sso/acs");
        assert_eq!(r.header("location"), Some("/session"));
        let cookie = r
            .cookies
            .iter()
            .map(|c| c.split(';').next().unwrap().to_string())
            .find(|c| c.starts_with("__Host-identity_session="))
            .expect("a session cookie");
        let s = self
            .env
            .deployment
            .send(ApiRequest::get("/session").cookie(&cookie))
            .await;
        assert_status(&s, 200, "GET /session after SSO");
        let s = s.json();
        assert_eq!(s["email"], "grace@acme.example");
        assert_eq!(s["sso"], true);
        assert_eq!(s["idp"], "acme");
        assert_eq!(s["status"], "pending");

        // The same response again: the assertion ID is in the replay cache.
        let again = self.env.deployment.send(post()).await;
        assert_status(&again, 403, "replayed SAML response");
        self.secrets_seen.push(cookie_value(&cookie));
    }

    /// Nothing the flows handled (tokens, assertions, codes, client secrets, cookies)
    /// appears in any bootstrap's output.
    fn logs_hold_no_secrets(&self) {
        let output = self.env.deployment.output();
        assert!(
            output.contains("\"level\""),
            "the bootstraps log JSON lines: {output}"
        );
        for s in &self.secrets_seen {
            assert!(
                !output.contains(s.as_str()),
                "a secret value appears in the logs"
            );
        }
    }
}

fn cookie_value(cookie: &str) -> String {
    cookie.split_once('=').unwrap().1.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstraps_serve_the_jwt_grant_the_code_flow_and_an_acs_post_through_the_runtime_api() {
    let Some(env) = deploy().await else { return };
    let _audit = identity_tests::stack::AuditOnPanic(env.judge.clone());
    let mut flows = Flows {
        env,
        secrets_seen: Vec::new(),
    };
    flows.jwt_grant().await;
    flows.authorize_and_exchange().await;
    flows.acs_login().await;
    flows.logs_hold_no_secrets();
    // Every call each bootstrap made is one its role's policy in template.yaml allows.
    let audit = flows.env.judge.audit();
    assert!(
        audit.refused.is_empty(),
        "calls outside a function's IAM policy:\n{}",
        audit.report()
    );
    // Each bootstrap served its requests from one process: no restart on the way.
    for (name, f) in flows.env.deployment.functions.iter_mut() {
        assert!(f.exited().is_none(), "{name} exited:\n{}", f.output());
        assert!(
            f.api.init_error().is_none(),
            "{name} reported an init error"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Portability: each bootstrap starts in a root that holds nothing but glibc
// ---------------------------------------------------------------------------------------

/// The glibc files the bootstraps may need (and nothing else), from this machine.
const GLIBC: &[&str] = &["libc.so.6", "libm.so.6", "libgcc_s.so.1"];

fn host_lib(name: &str) -> PathBuf {
    for dir in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
    ] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return std::fs::canonicalize(p).unwrap();
        }
    }
    panic!("{name} not found on this machine");
}

/// A root with `/lib64/ld-linux-x86-64.so.2`, glibc's libraries, an empty `/tmp` and the
/// bootstrap as `/var/task/bootstrap`.
fn glibc_only_root(bootstrap: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let lib = root.path().join("lib/x86_64-linux-gnu");
    let lib64 = root.path().join("lib64");
    let task = root.path().join("var/task");
    for d in [&lib, &lib64, &task, &root.path().join("tmp")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(
        host_lib("ld-linux-x86-64.so.2"),
        lib64.join("ld-linux-x86-64.so.2"),
    )
    .unwrap();
    for name in GLIBC {
        std::fs::copy(host_lib(name), lib.join(name)).unwrap();
    }
    std::fs::copy(bootstrap, task.join("bootstrap")).unwrap();
    root
}

/// A program's absolute path (the bootstrap's environment is cleared, PATH included).
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// `chroot` as root; otherwise in a user namespace where we are root.
fn chroot_command() -> Option<(PathBuf, Vec<String>)> {
    let chroot = program("chroot")?;
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        return Some((chroot, vec![]));
    }
    let unshare = program("unshare")?;
    let usable = Command::new(&unshare)
        .args(["--user", "--map-root-user", "true"])
        .status()
        .is_ok_and(|s| s.success());
    usable.then(|| {
        (
            unshare,
            vec![
                "--user".into(),
                "--map-root-user".into(),
                chroot.display().to_string(),
            ],
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bootstrap_starts_in_a_glibc_only_root_and_answers_an_invocation() {
    let Some(bootstraps) = identity_tests::runtime_api::bootstraps() else {
        return;
    };
    let Some((program, prefix)) = chroot_command() else {
        assert!(
            !identity_tests::services_required(),
            "neither root nor user namespaces: cannot make a chroot"
        );
        eprintln!("skipped: cannot chroot here");
        return;
    };
    // DynamoDB Local and moto on loopback (the root shares the network): nothing else
    // outside the root is needed.
    let Some(local) = LocalAws::provision(BASE).await else {
        return;
    };
    let env = local.env.clone();
    let routes = template::routes(&template::read());
    for (id, path) in bootstraps {
        let root = glibc_only_root(&path);
        let mut args: Vec<String> = prefix.clone();
        args.push(root.path().display().to_string());
        args.push("/var/task/bootstrap".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut f = Bootstrap::start(&id, &program, &args, &env).await;
        if id == ROTATION {
            // Not an HTTP function: a rotation event for a secret that is not ours is
            // answered with an error, from a process that keeps running.
            let answer = f
                .api
                .invoke(&rotation_event("not-ours", "t", "createSecret"), TIMEOUT)
                .await;
            assert!(
                matches!(answer, Err(runtime_api::InvokeError::Function { .. })),
                "{id} in a glibc-only root: {answer:?}\n{}",
                f.output()
            );
            assert!(f.exited().is_none(), "{id} exited:\n{}", f.output());
            continue;
        }
        let (request, want) = runtime_api::probe(&id);
        let route = routes
            .iter()
            .find(|r| r.matches(&request.method, &request.path).is_some())
            .unwrap_or_else(|| panic!("no route for the probe of {id}"))
            .clone();
        assert_eq!(route.function, id, "the probe is routed to {id}");
        let r = f.send(&request.event(HOST, &route)).await;
        if want == 0 {
            assert!(r.status < 500, "{id} in a glibc-only root: {}", r.text());
        } else {
            assert_eq!(
                r.status,
                want,
                "{id} in a glibc-only root: {}\n{}",
                r.text(),
                f.output()
            );
        }
        assert!(f.exited().is_none(), "{id} exited:\n{}", f.output());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_refuses_the_embedded_store_and_embedded_secrets() {
    let Some(bootstraps) = identity_tests::runtime_api::bootstraps() else {
        return;
    };
    // Built without the embedded store: a deployment cannot fall back to a local database
    // or to keys it makes itself; its init fails, naming what to set instead.
    for (store, secrets, said) in [
        (
            "embedded:/tmp/identity-refused",
            "secretsmanager:unused-",
            "this build has no embedded store",
        ),
        (
            "dynamodb:",
            "embedded",
            "this build has no embedded secrets",
        ),
    ] {
        let env = runtime_api::env_of(&[
            ("IDENTITY_BASE_URL", BASE),
            ("IDENTITY_STORE", store),
            ("IDENTITY_SECRETS", secrets),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        // The rotation function has no store, and refuses embedded secrets in its own words.
        for (id, path) in bootstraps.iter().filter(|(id, _)| id != ROTATION) {
            let mut f = Bootstrap::start(id, path, &[], &env).await;
            let mut status = None;
            for _ in 0..200 {
                status = f.exited();
                if status.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let status =
                status.unwrap_or_else(|| panic!("{id} kept running on {store}, {secrets}"));
            assert!(
                !status.success(),
                "{id} exited cleanly on {store}, {secrets}"
            );
            // The exit can be seen before the last line is read from the pipe.
            let output = f
                .output_with(said, std::time::Duration::from_secs(10))
                .await;
            assert!(
                output.contains(said),
                "{id} on {store}, {secrets}: {output}"
            );
            assert!(
                !std::path::Path::new("/tmp/identity-refused").exists(),
                "{id} made a local store"
            );
        }
    }
}

const ROTATION: &str = "KeyRotationFunction";
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The event Secrets Manager sends the rotation function for one step.
fn rotation_event(secret_id: &str, token: &str, step: &str) -> Value {
    serde_json::json!({ "SecretId": secret_id, "ClientRequestToken": token, "Step": step })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotation_bootstrap_rotates_a_key_step_by_step_and_keeps_the_old_one() {
    let Some(bootstraps) = identity_tests::runtime_api::bootstraps() else {
        return;
    };
    let Some(local) = LocalAws::provision_judged(BASE).await else {
        return;
    };
    let (_, path) = bootstraps
        .iter()
        .find(|(id, _)| id == ROTATION)
        .expect("the rotation function is in template.yaml");
    let mut f = Bootstrap::start(ROTATION, path, &[], &local.env_for(ROTATION)).await;
    let prefix = local
        .env
        .iter()
        .find(|(k, _)| k == "IDENTITY_TABLE_PREFIX")
        .map(|(_, v)| v.clone())
        .unwrap();
    let id = format!("{prefix}signing");
    let before = local.state.secrets.signing_keys().await.unwrap();
    let token = uuid::Uuid::new_v4().to_string();
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        f.api
            .invoke(&rotation_event(&id, &token, step), TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}\n{}", f.output()));
    }
    // Read again, as a function does once its refresh interval has passed.
    let client = identity_tests::secretsmanager_client()
        .await
        .expect("moto, as LocalAws");
    let fresh = identity_tests::fresh_secrets(&client, &prefix);
    let after = fresh.signing_keys().await.unwrap();
    assert_ne!(
        after.current.kid, before.current.kid,
        "a new key is current"
    );
    assert!(
        after.by_kid(&before.current.kid).is_some(),
        "the old key is kept as previous"
    );
    // A second rotation right away would drop the old key while tokens signed with it may
    // still be in use: refused, nothing written.
    let second = uuid::Uuid::new_v4().to_string();
    f.api
        .invoke(&rotation_event(&id, &second, "createSecret"), TIMEOUT)
        .await
        .expect_err("the key made a moment ago is not rotated away");
    let output = f
        .output_with("rotation step failed", std::time::Duration::from_secs(10))
        .await;
    assert!(output.contains("rotation step failed"), "{output}");
    for s in &["private_key_pem", "BEGIN PRIVATE KEY"] {
        assert!(!output.contains(s), "the logs show no key material");
    }
    assert!(f.exited().is_none(), "{ROTATION} exited:\n{output}");
    // Every call it made, the refused rotation's included, is one its policy allows.
    let audit = local.judge.as_ref().expect("judged").audit();
    assert!(audit.refused.is_empty(), "{}", audit.report());
}
