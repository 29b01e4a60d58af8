//! The service as deployed (`identity_tests::stack`): the release bootstraps behind API
//! Gateway's routes, each function with the environment and the IAM role `template.yaml`
//! gives it, on DynamoDB Local and moto behind IAM. Requests go over HTTP to the stack's
//! loopback listener, as a client sends them to the API.
//!
//! Two things only the deployed shape shows:
//! - every route, error paths and throttles included, makes only calls its function's
//!   policy allows (a refused call is a 503 here and a refusal in the audit);
//! - API Gateway's contract: repeated query parameters, several `Set-Cookie`, base64 form
//!   bodies, mixed-case and repeated headers, `sourceIp` as the throttled address, the 10 MB
//!   body limit and a function past its timeout.

use std::time::{Duration, Instant};

use identity_shared::accounts::AccountStatus;
use identity_shared::oauth::{NewClient, OAuthClients, pkce};
use identity_tests::jwt_suite::{TestKey, ci_client, claims};
use identity_tests::oauth_suite::{basic_auth as basic, form_body as form};
use identity_tests::stack::{AuditOnPanic, Options, Stack};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A stack of its own, or `None` when the services or the bootstraps are not there (a
/// failure under the test command).
async fn stack(test: &str) -> Option<Stack> {
    identity_tests::runtime_api::bootstraps()?;
    identity_tests::dynamodb_endpoint_or_skip()?;
    let options = Options::from_env("127.0.0.1:0".parse().unwrap()).expect("options");
    let stack = Stack::start(options).await.expect("the local stack starts");
    stack.name_test(test);
    Some(stack)
}

/// One HTTP/1.1 exchange written byte for byte (header names as given, repeats kept):
/// status, raw header lines, body.
async fn raw(base: &str, request_head: &str, body: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let authority = base.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(authority).await.unwrap();
    let mut req = format!("{request_head}Host: {authority}\r\nConnection: close\r\n");
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    // A body past the gateway's limit may be refused before it is all sent.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("an answer within 30 s")
        .ok();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, headers, body)
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

/// `METHOD path` with `headers`, and a form body when given.
async fn send(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if form.is_some() {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    raw(base, &head, form.unwrap_or("").as_bytes()).await
}

/// Asserts an answer is not a 5xx (a refused AWS call is a 503), naming `what`.
fn below_500(what: &str, (status, _, text): (u16, Vec<(String, String)>, String)) {
    assert!(status < 500, "{what}: {status} {text}");
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

const REDIRECT: &str = "https://app.example.com/callback";

/// A confidential client of the stack: (client_id, secret).
async fn client(stack: &Stack, trusted: bool) -> (String, String) {
    let (c, secret) = stack
        .state
        .store
        .create_client(NewClient {
            name: "Dashboard".into(),
            redirect_uris: vec![REDIRECT.into()],
            scopes: vec!["identity".into(), "read".into(), "global".into()],
            trusted,
            public: false,
        })
        .await
        .unwrap();
    (
        c.client_id.to_string(),
        secret.unwrap().expose_secret().to_string(),
    )
}

/// Every route of the template with what a stranger sends (no session, made-up values),
/// then the flows that cross the function boundaries with a session (the code flow, the
/// device page, the JWT grant, tokens, keys), then floods of every throttled route: no
/// answer is a 5xx, and the IAM audit finds no call outside a function's policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_error_paths_and_throttles_included_stays_within_its_iam_policy() {
    let Some(stack) = stack("route sweep").await else {
        return;
    };
    let _audit = AuditOnPanic(stack.judge.clone());
    let base = stack.base_url.clone();
    let mut answers = Vec::new();
    for route in identity_tests::template::routes(&identity_tests::template::read()) {
        let path = route
            .path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "made-up" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let body = (route.method != "GET").then_some("email=x%40example.com&code=x");
        let (status, _, text) = send(
            &base,
            &route.method,
            &path,
            &[("Accept", "text/html"), ("Sec-Fetch-Site", "same-origin")],
            body,
        )
        .await;
        answers.push(format!("{} -> {status}", route.key()));
        assert!(status < 500, "{}: {status} {text}", route.key());
    }
    eprintln!("{}", answers.join("\n"));

    // Signed in (a session as sso-acs makes it), across the functions.
    let cookie =
        identity_tests::signed_in_cookie(&stack.state, "ada@example.com", AccountStatus::Active)
            .await;
    for path in [
        "/session",
        "/account/authorizations",
        "/account/apps",
        "/device",
        "/device?user_code=WXYZ-BCDF",
        "/addons/made-up/sso",
    ] {
        below_500(
            "GET {path} signed in",
            send(
                &base,
                "GET",
                path,
                &[("Accept", "text/html"), ("Cookie", &cookie)],
                None,
            )
            .await,
        );
    }
    // A device code guessed on the same-origin form (with the form's session-bound token):
    // looked up and counted against the account.
    let (_, _, code_form) = send(
        &base,
        "GET",
        "/device",
        &[("Accept", "text/html"), ("Cookie", &cookie)],
        None,
    )
    .await;
    let csrf =
        crate::oauth_common::hidden_value(&code_form, "csrf").expect("the code form's token");
    let guess = |code: &str| {
        serde_urlencoded::to_string([("csrf", csrf.as_str()), ("user_code", code)]).unwrap()
    };
    below_500(
        "POST /device",
        send(
            &base,
            "POST",
            "/device",
            &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")],
            Some(&guess("WXYZ-BCDF")),
        )
        .await,
    );

    // The code flow: authorize (trusted client, no consent) → code → token → refresh →
    // introspect → userinfo → revoke.
    let (client_id, secret) = client(&stack, true).await;
    let verifier = "as-deployed-verifier-as-deployed-verifier-0001";
    let query = form(&[
        ("response_type", "code"),
        ("client_id", &client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "identity read"),
        ("code_challenge", &pkce::challenge_of(verifier)),
        ("code_challenge_method", "S256"),
        ("state", "s1"),
    ]);
    let (status, headers, text) = send(
        &base,
        "GET",
        &format!("/oauth/authorize?{query}"),
        &[("Accept", "text/html"), ("Cookie", &cookie)],
        None,
    )
    .await;
    assert!((300..400).contains(&status), "authorize: {status} {text}");
    let location = header(&headers, "location").expect("Location");
    let code = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .expect("a code")
        .to_string();
    let auth = basic(&client_id, &secret);
    let exchange = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]);
    let (status, _, text) = send(
        &base,
        "POST",
        "/oauth/token",
        &[("Authorization", &auth)],
        Some(&exchange),
    )
    .await;
    assert_eq!(status, 200, "code exchange: {text}");
    let tokens = json(&text);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    // The code again: refused, and its grant revoked.
    let (status, _, text) = send(
        &base,
        "POST",
        "/oauth/token",
        &[("Authorization", &auth)],
        Some(&exchange),
    )
    .await;
    assert_eq!(status, 400, "second use of the code: {text}");
    let (status, _, text) = send(
        &base,
        "POST",
        "/oauth/token",
        &[("Authorization", &auth)],
        Some(&form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
        ])),
    )
    .await;
    assert_eq!(status, 400, "the refresh token of a revoked grant: {text}");
    let (status, _, text) = send(
        &base,
        "POST",
        "/oauth/introspect",
        &[("Authorization", &auth)],
        Some(&form(&[("token", &access)])),
    )
    .await;
    assert_eq!(status, 200, "introspect: {text}");
    assert_eq!(json(&text)["active"], false, "revoked with its grant");
    below_500(
        "userinfo",
        send(
            &base,
            "GET",
            "/oauth/userinfo",
            &[("Authorization", &format!("Bearer {access}"))],
            None,
        )
        .await,
    );
    below_500(
        "revoke",
        send(
            &base,
            "POST",
            "/oauth/revoke",
            &[("Authorization", &auth)],
            Some(&form(&[("token", &refresh)])),
        )
        .await,
    );

    // The JWT bearer grant, good and replayed, for a CI client.
    let key = TestKey::ec();
    let ci = ci_client(&stack.state.store, &key, "ci@example.com").await;
    let assertion = key.sign(&claims(
        &ci.client.client_id,
        "ci@example.com",
        &base,
        identity_tests::real_now(),
    ));
    let grant = form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", &assertion),
    ]);
    let (status, _, text) = send(&base, "POST", "/oauth/jwt/token", &[], Some(&grant)).await;
    assert_eq!(status, 200, "JWT grant: {text}");
    let ci_token = json(&text)["access_token"].as_str().unwrap().to_string();
    let (status, _, text) = send(&base, "POST", "/oauth/jwt/token", &[], Some(&grant)).await;
    assert_eq!(status, 400, "replayed assertion: {text}");
    // A CI token makes no API key.
    let (status, _, text) = send(
        &base,
        "POST",
        "/oauth/authorizations",
        &[
            ("Authorization", &format!("Bearer {ci_token}")),
            ("Content-Type", "application/json"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 403, "a CI token makes no key: {text}");

    // `identity login` across oauth-token and oauth-authorize (the code typed on the page),
    // then an API key made with its fresh token, listed and revoked.
    stack.state.store.ensure_cli_client().await.unwrap();
    let cli = identity_shared::oauth::client::CLI_CLIENT_ID;
    let cli_start = form(&[("client_id", cli)]);
    let start_device = || {
        send(
            &base,
            "POST",
            "/oauth/device/authorize",
            &[],
            Some(&cli_start),
        )
    };
    let (status, _, text) = start_device().await;
    assert_eq!(status, 200, "device authorize: {text}");
    let started = json(&text);
    let user_code = started["user_code"].as_str().unwrap();
    let (status, _, approval) = send(
        &base,
        "POST",
        "/device",
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")],
        Some(&guess(user_code)),
    )
    .await;
    assert_eq!(status, 200, "the typed code: {approval}");
    let device_csrf =
        crate::oauth_common::hidden_value(&approval, "csrf").expect("the approval's token");
    let (status, _, text) = send(
        &base,
        "POST",
        "/device",
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")],
        Some(&form(&[
            ("csrf", &device_csrf),
            ("user_code", user_code),
            ("decision", "allow"),
        ])),
    )
    .await;
    assert_eq!(status, 200, "approve: {text}");
    let (status, _, text) = send(
        &base,
        "POST",
        "/oauth/token",
        &[],
        Some(&form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", started["device_code"].as_str().unwrap()),
            ("client_id", cli),
        ])),
    )
    .await;
    assert_eq!(status, 200, "device token: {text}");
    let bearer = format!("Bearer {}", json(&text)["access_token"].as_str().unwrap());
    let (status, _, text) = send(
        &base,
        "POST",
        "/oauth/authorizations",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 201, "API key: {text}");
    let key_id = json(&text)["id"].as_str().unwrap().to_string();
    let (status, _, text) = send(
        &base,
        "GET",
        "/oauth/authorizations",
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, 200, "API keys: {text}");
    let (status, _, text) = send(
        &base,
        "DELETE",
        &format!("/oauth/authorizations/{key_id}"),
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, 200, "API key revoked: {text}");

    // Floods of the throttled routes, past their limits. Device-login starts: every one
    // counts against the address, and past 100 the address starts no more (429).
    let mut starts_locked_at = None;
    for i in 0..=101 {
        let (status, _, text) = start_device().await;
        assert!(status < 500, "device start {i}: {status} {text}");
        if status == 429 {
            starts_locked_at = Some(i);
            break;
        }
    }
    assert!(
        starts_locked_at.is_some(),
        "device starts from one address are bounded"
    );
    for i in 0..12 {
        below_500(
            "POST /login",
            send(
                &base,
                "POST",
                "/login",
                &[("Sec-Fetch-Site", "same-origin")],
                Some(&form(&[
                    ("email", "ada@example.com"),
                    ("password", &format!("wrong {i}")),
                ])),
            )
            .await,
        );
    }
    for _ in 0..4 {
        let (status, _, text) = send(
            &base,
            "POST",
            "/account/password/reset",
            &[("Sec-Fetch-Site", "same-origin")],
            Some("email=ada%40example.com"),
        )
        .await;
        assert!(
            status < 500,
            "POST /account/password/reset: {status} {text}"
        );
    }
    for _ in 0..3 {
        below_500("a bad JWT grant", send(
            &base,
            "POST",
            "/oauth/jwt/token",
            &[],
            Some("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=e30.e30.x"),
        ).await);
    }
    for _ in 0..12 {
        below_500(
            "POST /device",
            send(
                &base,
                "POST",
                "/device",
                &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")],
                Some(&guess("BCDF-GHJK")),
            )
            .await,
        );
    }

    let audit = stack.audit();
    assert!(
        audit.refused.is_empty(),
        "calls outside a function's IAM policy:\n{}",
        audit.report()
    );
}

/// What API Gateway does to requests and answers, seen from outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateways_contract_holds_through_the_deployed_shape() {
    let Some(stack) = stack("API Gateway's contract").await else {
        return;
    };
    let _audit = AuditOnPanic(stack.judge.clone());
    let base = stack.base_url.clone();

    // A route the API does not have: API Gateway's own 404.
    let (status, _, text) = send(&base, "GET", "/nowhere", &[], None).await;
    assert_eq!(
        (status, json(&text)["message"].as_str()),
        (404, Some("Not Found"))
    );

    // A repeated query parameter reaches the function in rawQueryString and is refused,
    // not joined into one value.
    let (status, _, text) = send(
        &base,
        "GET",
        "/oauth/authorize?response_type=code&client_id=a&client_id=b",
        &[("Accept", "text/html")],
        None,
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("client_id more than once"), "{text}");

    // A form body (API Gateway sends it base64-encoded) read as the form it is; mixed-case
    // header names reach the function lower-cased.
    let (client_id, secret) = client(&stack, false).await;
    let auth = basic(&client_id, &secret);
    let credentials = form(&[("grant_type", "client_credentials"), ("scope", "read")]);
    let (status, headers, text) = send(
        &base,
        "POST",
        "/oauth/token",
        &[("aUtHoRiZaTiOn", &auth)],
        Some(&credentials),
    )
    .await;
    assert_eq!(status, 200, "client credentials: {text}");
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    // The same header twice is one comma-joined value: refused, not the first taken.
    let (status, _, text) = send(
        &base,
        "POST",
        "/oauth/token",
        &[("Authorization", &auth), ("Authorization", &auth)],
        Some(&credentials),
    )
    .await;
    assert!(
        status == 400 || status == 401,
        "two Authorization headers: {status} {text}"
    );

    // Several cookies in one answer: each its own Set-Cookie; and cookies sent in two
    // Cookie headers both reach the function.
    let (status, headers, text) = send(
        &base,
        "POST",
        "/logout",
        &[("Accept", "text/html"), ("Sec-Fetch-Site", "same-origin")],
        Some(""),
    )
    .await;
    assert!(status < 500, "{status} {text}");
    let set_cookies: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(!set_cookies.is_empty(), "logout clears the session cookie");
    let cookie =
        identity_tests::signed_in_cookie(&stack.state, "ada@example.com", AccountStatus::Active)
            .await;
    let (status, _, text) = send(
        &base,
        "GET",
        "/session",
        &[("Cookie", "other=1"), ("Cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(
        status, 200,
        "the session cookie in a second Cookie header: {text}"
    );
    assert_eq!(json(&text)["email"], "ada@example.com");

    // The throttled address is the connection's (sourceIp), whatever X-Forwarded-For says.
    let bad =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=e30.e30.x";
    let mut locked_at = None;
    for i in 0..=101 {
        let spoofed = format!("203.0.113.{}", i % 250);
        let (status, _, text) = send(
            &base,
            "POST",
            "/oauth/jwt/token",
            &[("X-Forwarded-For", &spoofed)],
            Some(bad),
        )
        .await;
        assert!(status < 500, "a bad JWT grant: {status} {text}");
        if text.contains("too many") || status == 429 {
            locked_at = Some(i);
            break;
        }
    }
    let locked_at = locked_at.expect("the address is locked within its limit of 100 failures");
    assert!(locked_at <= 101, "locked after {locked_at}");

    // A body over API Gateway's 10 MB: its 413, the function never called.
    let big = vec![b'a'; identity_tests::stack::gateway::MAX_BODY + 1];
    let (status, _, text) = raw(
        &base,
        "POST /oauth/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        &big,
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert_eq!(json(&text)["message"], "Request Entity Too Large");

    // A function past its timeout (its process stopped): API Gateway answers 500, Lambda
    // replaces the execution environment, and the next request is served.
    let token_fn = &stack.gateway.functions["OAuthTokenFunction"];
    let pids = token_fn.pids().await;
    assert!(!pids.is_empty());
    for pid in &pids {
        std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap();
    }
    let started = Instant::now();
    let (status, _, text) = send(&base, "GET", "/.well-known/jwks.json", &[], None).await;
    assert_eq!(status, 500, "{text}");
    assert_eq!(json(&text)["message"], "Internal Server Error");
    assert!(
        started.elapsed() >= token_fn.timeout,
        "answered after the function's timeout"
    );
    let (status, _, text) = send(&base, "GET", "/.well-known/jwks.json", &[], None).await;
    assert_eq!(status, 200, "a new execution environment serves: {text}");
    for pid in &pids {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &pid.to_string()])
            .status();
    }

    let audit = stack.audit();
    assert!(audit.refused.is_empty(), "{}", audit.report());
}

/// A policy narrowed by one grant the code needs (oauth-authorize's Query of the once
/// table, the `/device` lookup's throttle check): the person gets the clean 503 page, as in AWS, and
/// the audit names the refused call with its function, route and test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_missing_a_grant_is_a_clean_503_and_a_refusal_in_the_audit() {
    if identity_tests::runtime_api::bootstraps().is_none()
        || identity_tests::dynamodb_endpoint_or_skip().is_none()
    {
        return;
    }
    let full = identity_tests::template::read();
    let needed = "              Action: [dynamodb:Query, dynamodb:PutItem, dynamodb:UpdateItem]\n              Resource: !GetAtt OnceTable.Arn";
    assert_eq!(
        full.matches(needed).count(),
        1,
        "oauth-authorize's once-table grant, and only it (jwt-grant's also reads)"
    );
    let narrowed = full.replacen(
        needed,
        "              Action: [dynamodb:PutItem, dynamodb:UpdateItem]\n              Resource: !GetAtt OnceTable.Arn",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("narrowed.yaml");
    std::fs::write(&template, narrowed).unwrap();
    let mut options = Options::from_env("127.0.0.1:0".parse().unwrap()).unwrap();
    options.template = template;
    let stack = Stack::start(options)
        .await
        .expect("the narrowed stack starts");
    stack.name_test("narrowed policy");
    let cookie =
        identity_tests::signed_in_cookie(&stack.state, "ada@example.com", AccountStatus::Active)
            .await;
    // The link's page (no lookup), then the code sent from it (the lookup's throttle
    // check reads the once table).
    let (status, _, form) = send(
        &stack.base_url,
        "GET",
        "/device?user_code=WXYZ-BCDF",
        &[("Accept", "text/html"), ("Cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{form}");
    let csrf = crate::oauth_common::hidden_value(&form, "csrf").expect("the form's token");
    let body =
        serde_urlencoded::to_string([("csrf", csrf.as_str()), ("user_code", "WXYZ-BCDF")]).unwrap();
    let (status, headers, page) = send(
        &stack.base_url,
        "POST",
        "/device",
        &[
            ("Accept", "text/html"),
            ("Cookie", &cookie),
            ("Origin", &stack.base_url),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        Some(&body),
    )
    .await;
    assert_eq!(status, 503, "{page}");
    assert!(header(&headers, "content-type").is_some_and(|t| t.starts_with("text/html")));
    assert!(page.contains("could not complete your request"), "{page}");
    assert!(
        !page.contains("AccessDenied") && !page.contains("dynamodb"),
        "no internals: {page}"
    );
    let audit = stack.audit();
    assert_eq!(audit.refused.len(), 1, "{}", audit.report());
    let refused = &audit.refused[0];
    assert_eq!(
        (
            refused.function.as_str(),
            refused.action.as_str(),
            refused.route.as_str(),
            refused.test.as_str()
        ),
        (
            "OAuthAuthorizeFunction",
            "dynamodb:Query",
            "POST /device",
            "narrowed policy"
        )
    );
    assert!(refused.resource.ends_with("-once"), "{}", refused.resource);
}
