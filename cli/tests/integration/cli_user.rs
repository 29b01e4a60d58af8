//! The user commands against a scripted device-flow server on loopback, for the answers a
//! real server gives only at its own pace (RFC 8628's `slow_down`, an expired code), and
//! the one-line errors. The real server's journeys are in `browser::cli_login`.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde_json::{Value, json};

use crate::pty::Pty;

const BIN: &str = env!("CARGO_BIN_EXE_identity");

/// The scripted server: the device authorization, then the token endpoint's answers in
/// order (the last one repeats), and the time of every poll.
struct Script {
    base: String,
    answers: Mutex<VecDeque<(u16, Value)>>,
    polls: Mutex<Vec<Instant>>,
}

async fn device_authorize(State(s): State<Arc<Script>>) -> Response {
    axum::Json(json!({
        "device_code": "the-device-code",
        "user_code": "WXYZ-BCDF",
        "verification_uri": format!("{}/device", s.base),
        "verification_uri_complete": format!("{}/device?user_code=WXYZ-BCDF", s.base),
        "expires_in": 600,
        "interval": 1,
    }))
    .into_response()
}

async fn token(State(s): State<Arc<Script>>) -> Response {
    s.polls.lock().unwrap().push(Instant::now());
    let mut answers = s.answers.lock().unwrap();
    let (status, body) = if answers.len() > 1 {
        answers.pop_front().unwrap()
    } else {
        answers.front().cloned().unwrap()
    };
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn userinfo() -> Response {
    axum::Json(json!({"sub": "a1", "email": "pat@example.test", "email_verified": true}))
        .into_response()
}

async fn scripted(answers: Vec<(u16, Value)>) -> Arc<Script> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let script = Arc::new(Script {
        base,
        answers: Mutex::new(answers.into()),
        polls: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/oauth/device/authorize", post(device_authorize))
        .route("/oauth/token", post(token))
        .route("/oauth/userinfo", get(userinfo))
        .with_state(script.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    script
}

fn error(code: &str) -> (u16, Value) {
    (
        400,
        json!({"error": code, "error_description": format!("{code} from the script")}),
    )
}

fn tokens() -> (u16, Value) {
    (
        200,
        json!({"access_token": "at-1", "refresh_token": "rt-1", "token_type": "Bearer", "expires_in": 3600}),
    )
}

/// `identity ARGS` as a person's shell runs it, with its own config folder and a `BROWSER`
/// that only writes down what it was asked to open.
pub fn user_command(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("BROWSER", browser_script(home))
        .env_remove("IDENTITY_SERVER")
        .env_remove("IDENTITY_API_KEY")
        .env_remove("IDENTITY_LEGACY_SSO");
    cmd
}

/// A `BROWSER` that writes the address it gets into `opened` beside it.
pub fn browser_script(home: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let script = home.join("browser.sh");
    if !script.exists() {
        let opened = home.join("opened");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    script.display().to_string()
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run identity")
}

/// `identity login --server BASE` with stdin on /dev/null, to its end.
async fn login_with_stdin_closed(home: &Path, base: &str) -> Output {
    let mut cmd = user_command(home, &["login", "--server", base]);
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// RFC 8628 §3.5: after `slow_down` every later poll waits 5 s more; the login then
/// completes. Headless (stdin is not a terminal): no browser is opened.
#[tokio::test]
async fn slow_down_adds_five_seconds_to_the_interval() {
    let home = tempfile::tempdir().unwrap();
    let s = scripted(vec![
        error("authorization_pending"),
        error("slow_down"),
        error("authorization_pending"),
        tokens(),
    ])
    .await;
    let out = login_with_stdin_closed(home.path(), &s.base).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("Logged in as pat@example.test"), "{stdout}");
    assert!(!stdout.contains("Press any key"), "headless: {stdout}");
    assert!(
        !home.path().join("opened").exists(),
        "no browser when headless"
    );
    let polls = s.polls.lock().unwrap().clone();
    assert_eq!(polls.len(), 4, "four polls");
    let gap = |i: usize| polls[i] - polls[i - 1];
    assert!(
        gap(1) < Duration::from_secs(3),
        "interval 1 s before: {:?}",
        gap(1)
    );
    assert!(
        gap(2) >= Duration::from_millis(5900),
        "slowed down: {:?}",
        gap(2)
    );
    assert!(
        gap(3) >= Duration::from_millis(5900),
        "still slower: {:?}",
        gap(3)
    );
}

/// An expired code and a denial each end the login with one line and exit 1; nothing is
/// written to the credentials file.
#[tokio::test]
async fn expired_code_and_denial_end_the_login() {
    for (answer, says) in [
        (
            "expired_token",
            "the code expired before the login was confirmed",
        ),
        ("access_denied", "the login was denied in the browser"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let s = scripted(vec![error("authorization_pending"), error(answer)]).await;
        let out = login_with_stdin_closed(home.path(), &s.base).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            !home
                .path()
                .join("config/identity/credentials.json")
                .exists()
        );
    }
}

/// In a terminal, `q` at the prompt ends the login without opening a browser.
#[tokio::test]
async fn q_at_the_prompt_exits() {
    let home = tempfile::tempdir().unwrap();
    let s = scripted(vec![error("authorization_pending")]).await;
    let mut pty = Pty::spawn(user_command(home.path(), &["login", "--server", &s.base]));
    pty.wait_for("device?user_code=WXYZ-BCDF", 20)
        .await
        .unwrap();
    let out = pty
        .wait_for(
            "Press any key to open up the browser to login or q to exit",
            5,
        )
        .await
        .unwrap();
    assert!(out.contains("WXYZ-BCDF"), "{out}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    pty.type_keys("q");
    let status = pty.exit(10).await.unwrap();
    assert_eq!(status.code(), Some(1), "{}", pty.output());
    assert!(
        pty.output().contains("error: login cancelled"),
        "{}",
        pty.output()
    );
    assert!(!home.path().join("opened").exists());
    assert!(s.polls.lock().unwrap().is_empty(), "no poll after q");
}

/// Each failure is one clear line and exit 1: no server named, a plain-http server that is
/// not loopback, a server that does not answer, not logged in.
#[test]
fn failures_are_one_line_each() {
    let home = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}", crate::free_port());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["whoami"], "no server: pass --server URL"),
        (
            vec!["login", "--server", "http://id.example.com"],
            "http is allowed only on a loopback host",
        ),
        (
            vec!["login", "--server", &closed],
            "cannot reach the server at",
        ),
        (vec!["whoami", "--server", &closed], "not logged in to"),
        (vec!["token", "--server", &closed], "not logged in to"),
        (
            vec!["authorizations", "list", "--server", &closed],
            "not logged in to",
        ),
    ];
    for (args, says) in cases {
        let out = run(&mut user_command(home.path(), &args));
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
