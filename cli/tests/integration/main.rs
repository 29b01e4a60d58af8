//! The `identity` command's tests in one binary: the operator commands (admin_*), `serve`
//! (cli), the user commands (cli_user, in a terminal through pty) and the browser journeys
//! (browser, with `identity login` in `browser::cli_login`).

/// A free port on 127.0.0.1 for a server a test starts (every test server listens there).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `identity ARGS…` against the embedded store in `store`, stdin closed.
pub fn identity_admin(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_identity"))
        .args(args)
        .env("IDENTITY_STORE", format!("embedded:{}", store.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run identity")
}

/// The one JSON object a command printed with `--json`.
pub fn json_of(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim().lines().count(), 1, "one JSON object: {text}");
    serde_json::from_str(text.trim()).expect("JSON output")
}

mod admin_addon;
mod admin_jwt;
mod admin_org;
mod browser;
mod cli;
mod cli_user;
mod limits;
mod oauth_admin;
mod pty;
