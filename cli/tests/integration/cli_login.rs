//! `identity login` and the commands after it, against `identity serve`, with the person's
//! side in real Chromium: the CLI in a terminal (pty) or with stdin on `/dev/null`, the
//! browser following the address the CLI printed (or handed to `BROWSER`), signing in
//! through the organisation's IdP or with a password, and confirming or denying the code.
//! A child of `browser`, whose world (service, IdP, browser) it uses.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use identity_shared::secret::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::cli_user::user_command;
use crate::pty::Pty;

/// `identity ARGS` (stdin on /dev/null) with `home`'s config folder, and `env`.
async fn identity(home: &Path, args: &[&str], env: &[(&str, &str)]) -> R<Output> {
    let mut cmd = user_command(home, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null());
    Ok(tokio::task::spawn_blocking(move || cmd.output()).await??)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn credentials(home: &Path) -> R<Value> {
    let file = home.join("config/identity/credentials.json");
    Ok(serde_json::from_slice(&std::fs::read(file)?)?)
}

/// The person's side of a device login: open `url`, sign in with `sign_in`, then confirm
/// (`Approve`) or refuse (`Deny`) the code.
async fn answer_in_browser(
    w: &mut World,
    url: &str,
    code: &str,
    email: &str,
    how: SignIn<'_>,
    press: &str,
) -> R {
    w.b.go(url).await?;
    match how {
        SignIn::Sso(idp) => w.sso_sign_in(email, idp).await?,
        SignIn::Password(p) => w.password_sign_in(email, p).await?,
    }
    w.b.wait_url("the device page", |u| u.contains("/device"))
        .await?;
    // A login asks for the whole account (`global`): no link fills the code in, the person
    // types what the terminal shows.
    w.b.page("cli-device-code", "Connect a device").await?;
    ensure!(
        w.b.value("#user_code").await?.is_empty(),
        "nothing filled in for a full-access login"
    );
    w.b.fill("#user_code", code).await?;
    w.b.press("Continue").await?;
    w.b.page("cli-device-confirm", "Connect Identity CLI")
        .await?;
    let text = w.b.text().await?;
    ensure!(text.contains(code), "the page shows {code}");
    ensure!(
        text.contains("The request was started less than a minute ago")
            && text.contains("from 127.0.0.1"),
        "when and from where: {text}"
    );
    w.b.press(press).await?;
    Ok(())
}

/// The user code `identity login` printed (`… the code BCDF-GHJK …`).
fn printed_code(printed: &str) -> R<String> {
    printed
        .match_indices("code ")
        .map(|(i, m)| &printed[i + m.len()..])
        .filter_map(|rest| rest.get(..9))
        .find(|c| {
            c.char_indices().all(|(i, ch)| {
                if i == 4 {
                    ch == '-'
                } else {
                    ch.is_ascii_uppercase()
                }
            })
        })
        .map(str::to_string)
        .ok_or_else(|| format!("no user code printed: {printed}").into())
}

enum SignIn<'a> {
    Sso(&'a str),
    Password(&'a str),
}

/// `identity login` with stdin on /dev/null (headless), the code confirmed in the browser
/// by `email`; waits for exit 0 and returns what it printed.
async fn login_headless(w: &mut World, home: &Path, email: &str, how: SignIn<'_>) -> R<String> {
    let base = w.base().to_string();
    let mut cmd = tokio::process::Command::from(user_command(home, &["login", "--server", &base]));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().ok_or("stdout")?).lines();
    let mut printed = String::new();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await??
            .ok_or_else(|| format!("login ended early: {printed}"))?;
        printed.push_str(&line);
        printed.push('\n');
        if line.trim() == format!("{base}/device") {
            break line.trim().to_string();
        }
    };
    ensure!(printed.contains("type the code"), "{printed}");
    let code = printed_code(&printed)?;
    answer_in_browser(w, &url, &code, email, how, "Approve").await?;
    w.b.page("cli-device-approved", "Device connected").await?;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    while let Some(line) = lines.next_line().await? {
        printed.push_str(&line);
        printed.push('\n');
    }
    ensure!(status.success(), "login failed: {printed}");
    Ok(printed)
}

/// A loopback proxy in front of the service that keeps every byte a client sends it.
struct Recorder {
    base: String,
    sent: Arc<Mutex<Vec<u8>>>,
}

async fn recording_proxy(service_base: &str) -> R<Recorder> {
    let target = service_base
        .strip_prefix("http://")
        .ok_or("http service")?
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let keep = sent.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                continue;
            };
            let keep = keep.clone();
            tokio::spawn(async move {
                let (mut client_in, mut client_out) = client.into_split();
                let (mut server_in, mut server_out) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_in, &mut client_out).await;
                });
                let mut buf = [0u8; 8192];
                while let Ok(n) = client_in.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    keep.lock().unwrap().extend_from_slice(&buf[..n]);
                    if server_out.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(Recorder { base, sent })
}

/// `openssl req -x509 -newkey rsa:4096 -keyout server.key -out server.crt -days 365 -nodes`,
/// as the AppLink documentation has it: (key, certificate).
fn seeds_keypair(dir: &Path) -> R<(std::path::PathBuf, std::path::PathBuf)> {
    let key = dir.join("server.key");
    let crt = dir.join("server.crt");
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:4096", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .args(["-days", "365", "-nodes", "-subj", "/CN=ci.example.com"])
        .output()?;
    ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((key, crt))
}

/// The `Token:` line `identity authorizations create` printed, and the `ID:` one.
fn created_key(out: &Output) -> R<(String, String)> {
    let text = stdout(out);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| format!("no {name} in {text}"))
    };
    Ok((field("Token:")?, field("ID:")?))
}

/// A person logs in from a terminal: the prompt, a key press opens the browser (BROWSER)
/// on the printed address, sign-in through the organisation's IdP, the code confirmed;
/// then whoami, the credentials file's modes, a refresh when the access token has expired,
/// an API key for CI (whoami, `authorizations jwt add` with a seeds-made key through a
/// recording proxy, the app fetching the result, a collaborator refused, revoke), logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_login_in_a_terminal_then_ci_with_an_api_key() {
    journey!("cli-login", |w| {
        w.outside
            .idp(&w.service, "acme", "acme.test", false)
            .await?;
        w.service
            .admin(&["user", "add", "--email", "pat@acme.test"], None)
            .await?;
        let base = w.base().to_string();
        let home = tempfile::tempdir()?;
        let h = home.path();

        let mut pty = Pty::spawn(user_command(h, &["login", "--server", &base]));
        pty.wait_for("(code ", 30).await?;
        pty.wait_for(
            "Press any key to open up the browser to login or q to exit",
            5,
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        pty.type_keys("x");
        pty.wait_for("Waiting for login...", 10).await?;
        let shown = pty.wait_for("on that page when it asks", 10).await?;
        let url = std::fs::read_to_string(h.join("opened"))?;
        ensure!(
            url == format!("{base}/device") && shown.contains(&url),
            "the browser opened the printed address, with no code in it: {url}\n{shown}"
        );
        let code = printed_code(&shown)?;
        answer_in_browser(
            &mut w,
            &url,
            &code,
            "pat@acme.test",
            SignIn::Sso("acme"),
            "Approve",
        )
        .await?;
        w.b.page("cli-device-approved", "Device connected").await?;
        let out = pty.wait_for("Logged in as pat@acme.test", 30).await?;
        ensure!(out.contains("Logging in... done"), "{out}");
        ensure!(
            pty.exit(10).await?.success(),
            "login exits 0: {}",
            pty.output()
        );

        // whoami: the default server is the last login's.
        let who = identity(h, &["whoami"], &[]).await?;
        ensure!(
            who.status.success() && stdout(&who).trim() == "pat@acme.test",
            "{}{}",
            stdout(&who),
            stderr(&who)
        );

        let dir = h.join("config/identity");
        let mode = |p: &Path| -> R<u32> { Ok(std::fs::metadata(p)?.permissions().mode() & 0o777) };
        ensure!(mode(&dir)? == 0o700, "folder mode {:o}", mode(&dir)?);
        ensure!(
            mode(&dir.join("credentials.json"))? == 0o600,
            "file mode {:o}",
            mode(&dir.join("credentials.json"))?
        );

        // The access token has expired: `token` refreshes, the new refresh token replaces
        // the old one, and the token it prints works.
        let mut creds = credentials(h)?;
        let before = creds["servers"][&base].clone();
        creds["servers"][&base]["expires_at"] = json!(0);
        std::fs::write(dir.join("credentials.json"), serde_json::to_vec(&creds)?)?;
        let t = identity(h, &["token"], &[]).await?;
        let fresh = stdout(&t).trim().to_string();
        ensure!(t.status.success() && !fresh.is_empty(), "{}", stderr(&t));
        ensure!(fresh != before["access_token"], "a new access token");
        let after = credentials(h)?["servers"][&base].clone();
        ensure!(after["refresh_token"] != before["refresh_token"], "rotated");
        ensure!(after["access_token"] == fresh.as_str(), "kept");
        let (status, body) = http(
            "GET",
            &format!("{base}/oauth/userinfo"),
            &[("Authorization", &format!("Bearer {fresh}"))],
            None,
        )
        .await?;
        ensure!(
            status == 200 && body.contains("pat@acme.test"),
            "{status} {body}"
        );

        // An API key for CI.
        let made = identity(
            h,
            &["authorizations", "create", "--description", "CI deploys"],
            &[],
        )
        .await?;
        ensure!(made.status.success(), "{}", stderr(&made));
        let (key, key_id) = created_key(&made)?;
        ensure!(key.starts_with("idk_"), "{key}");
        let listed = identity(h, &["authorizations", "list"], &[]).await?;
        ensure!(
            stdout(&listed).contains(&key_id)
                && stdout(&listed).contains("CI deploys")
                && !stdout(&listed).contains(&key),
            "{}",
            stdout(&listed)
        );
        let ci = tempfile::tempdir()?;
        let ci_env = [
            ("IDENTITY_API_KEY", key.as_str()),
            ("IDENTITY_SERVER", base.as_str()),
        ];
        let who = identity(ci.path(), &["whoami"], &ci_env).await?;
        ensure!(
            stdout(&who).trim() == "pat@acme.test",
            "API key whoami: {}{}",
            stdout(&who),
            stderr(&who)
        );

        // AppLink from CI: the key made by the seeds' openssl command signs the assertion
        // on this machine; the request goes through a proxy that records every byte.
        let (jwt_key, jwt_crt) = seeds_keypair(h)?;
        w.service
            .admin(
                &["app", "add", "--name", "ci-app", "--owner", "pat@acme.test"],
                None,
            )
            .await?;
        w.service
            .admin(&["user", "add", "--email", "col@acme.test"], None)
            .await?;
        w.service
            .admin(
                &[
                    "app",
                    "collaborator",
                    "add",
                    "ci-app",
                    "col@acme.test",
                    "--role",
                    "collaborator",
                ],
                None,
            )
            .await?;
        let client = w
            .service
            .admin(
                &[
                    "jwt-client",
                    "add",
                    "--name",
                    "CI",
                    "--cert",
                    jwt_crt.to_str().unwrap(),
                    "--user",
                    "pat@acme.test",
                    "--user",
                    "col@acme.test",
                    "--scope",
                    "global",
                ],
                None,
            )
            .await?;
        let client_id = client["client_id"].as_str().ok_or("client_id")?.to_string();
        let proxy = recording_proxy(&base).await?;
        let add_args = |server: &str| {
            vec![
                "authorizations".to_string(),
                "jwt".into(),
                "add".into(),
                "ci-auth".into(),
                "--app".into(),
                "ci-app".into(),
                "--client-id".into(),
                client_id.clone(),
                "--jwt-key-file".into(),
                jwt_key.display().to_string(),
                "--username".into(),
                "pat@acme.test".into(),
                "--server".into(),
                server.to_string(),
            ]
        };
        let args = add_args(&proxy.base);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let added = identity(ci.path(), &args, &ci_env).await?;
        ensure!(
            added.status.success(),
            "jwt add: {}{}",
            stdout(&added),
            stderr(&added)
        );
        ensure!(
            stdout(&added)
                .contains("Adding credentials for pat@acme.test to ci-app as ci-auth... Connected"),
            "{}",
            stdout(&added)
        );
        let sent = String::from_utf8_lossy(&proxy.sent.lock().unwrap()).into_owned();
        ensure!(
            sent.contains("POST /apps/ci-app/authorizations"),
            "the request went through the proxy"
        );
        let pem = std::fs::read_to_string(&jwt_key)?;
        ensure!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----"),
            "openssl wrote PKCS#8"
        );
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            ensure!(!sent.contains(line), "a line of the private key was sent");
        }
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        ensure!(
            !sent.contains(&body[..64.min(body.len())]) && !sent.contains("PRIVATE KEY"),
            "the key was sent"
        );

        // The app fetches it, by name and by alias.
        for name in ["ci-auth", "applink:ci-auth"] {
            let (status, body) = http(
                "GET",
                &format!("{base}/apps/ci-app/authorizations/{name}"),
                &[("Authorization", &format!("Bearer {key}"))],
                None,
            )
            .await?;
            let v: Value = serde_json::from_str(&body)?;
            ensure!(
                status == 200 && v["access_token"].is_string() && v["user"] == "pat@acme.test",
                "{status} {body}"
            );
        }
        let listed = identity(
            ci.path(),
            &["authorizations", "jwt", "list", "--app", "ci-app"],
            &ci_env,
        )
        .await?;
        ensure!(
            stdout(&listed).contains("ci-auth") && stdout(&listed).contains("applink:ci-auth"),
            "{}",
            stdout(&listed)
        );
        let history = w
            .service
            .admin(&["login-history", "--user", "pat@acme.test"], None)
            .await?;
        ensure!(
            history["attempts"].as_array().is_some_and(|a| a
                .iter()
                .any(|x| x["via"] == "cli" && x["outcome"] == "success")),
            "{history}"
        );

        // Removed from the CLI, it is gone for the app too; added again, it is back.
        let removed = identity(
            ci.path(),
            &[
                "authorizations",
                "jwt",
                "remove",
                "ci-auth",
                "--app",
                "ci-app",
            ],
            &ci_env,
        )
        .await?;
        ensure!(
            removed.status.success() && stdout(&removed).contains("Removed ci-auth from ci-app"),
            "{}{}",
            stdout(&removed),
            stderr(&removed)
        );
        let (status, _) = http(
            "GET",
            &format!("{base}/apps/ci-app/authorizations/ci-auth"),
            &[("Authorization", &format!("Bearer {key}"))],
            None,
        )
        .await?;
        ensure!(status == 404, "removed: {status}");
        let args = add_args(&base);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let again = identity(ci.path(), &args, &ci_env).await?;
        ensure!(again.status.success(), "{}", stderr(&again));

        // A collaborator (not owner or admin) is refused, with their own valid token.
        let now = identity_shared::clock::system().now();
        let assertion = jwt_grant::sign::sign_assertion(
            &SecretString::new(pem.clone()),
            &json!({"iss": client_id, "sub": "col@acme.test", "aud": base, "iat": now, "exp": now + 60}),
        )?;
        let (status, body) = http(
            "POST",
            &format!("{base}/oauth/jwt/token"),
            &[],
            Some(&form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.expose_secret()),
            ])),
        )
        .await?;
        ensure!(status == 200, "{status} {body}");
        let col_token = serde_json::from_str::<Value>(&body)?["access_token"]
            .as_str()
            .ok_or("token")?
            .to_string();
        let args = add_args(&base);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let refused = identity(
            ci.path(),
            &args,
            &[("IDENTITY_API_KEY", col_token.as_str())],
        )
        .await?;
        ensure!(
            refused.status.code() == Some(1)
                && stderr(&refused).contains("only the app's owner and its admins"),
            "{}{}",
            stdout(&refused),
            stderr(&refused)
        );

        // Revoked, the key stops working.
        let revoked = identity(h, &["authorizations", "revoke", &key_id], &[]).await?;
        ensure!(revoked.status.success(), "{}", stderr(&revoked));
        let who = identity(ci.path(), &["whoami"], &ci_env).await?;
        ensure!(
            who.status.code() == Some(1) && stderr(&who).contains("no longer accepts"),
            "{}",
            stderr(&who)
        );

        // Logout revokes the refresh token and forgets the login.
        let refresh = credentials(h)?["servers"][&base]["refresh_token"]
            .as_str()
            .ok_or("refresh")?
            .to_string();
        let out = identity(h, &["logout"], &[]).await?;
        ensure!(
            out.status.success() && stdout(&out).contains("Logging out... done"),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        ensure!(credentials(h)?["servers"].get(&base).is_none(), "forgotten");
        let (status, body) = http(
            "POST",
            &format!("{base}/oauth/token"),
            &[],
            Some(&form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", "identity-cli"),
            ])),
        )
        .await?;
        ensure!(
            status == 400 && body.contains("invalid_grant"),
            "{status} {body}"
        );
        let who = identity(h, &["whoami", "--server", &base], &[]).await?;
        ensure!(
            who.status.code() == Some(1) && stderr(&who).contains("not logged in"),
            "{}",
            stderr(&who)
        );
        Ok(())
    });
}

/// Headless with stdin on /dev/null (a machine without a browser): the address and code
/// at once, no browser; a password sign-in confirms it. API keys show on the account page,
/// one is revoked there; the other, and the CLI's login, end when the account moves to SSO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_login_and_api_keys_end_with_the_move_to_sso() {
    journey!("cli-headless", |w| {
        w.outside
            .idp(&w.service, "acme", "acme.test", false)
            .await?;
        w.service
            .user_with_password("max@acme.test", "max's old password")
            .await?;
        let base = w.base().to_string();
        let home = tempfile::tempdir()?;
        let h = home.path();
        let printed = login_headless(
            &mut w,
            h,
            "max@acme.test",
            SignIn::Password("max's old password"),
        )
        .await?;
        ensure!(
            printed.starts_with("Open this address in a browser and type the code"),
            "{printed}"
        );
        ensure!(printed.contains("Logged in as max@acme.test"), "{printed}");
        ensure!(
            !printed.contains("Press any key") && !h.join("opened").exists(),
            "no prompt, no browser"
        );

        let mut keys = Vec::new();
        for d in ["laptop script", "CI"] {
            let made = identity(
                h,
                &[
                    "authorizations",
                    "create",
                    "--description",
                    d,
                    "--expires-in",
                    "86400",
                ],
                &[],
            )
            .await?;
            ensure!(made.status.success(), "{}", stderr(&made));
            keys.push(created_key(&made)?);
        }
        let works = |key: String| {
            let ci = tempfile::tempdir().unwrap();
            let base = base.clone();
            async move {
                let out = identity(
                    ci.path(),
                    &["whoami", "--server", &base],
                    &[("IDENTITY_API_KEY", &key)],
                )
                .await?;
                R::<bool>::Ok(out.status.success() && stdout(&out).trim() == "max@acme.test")
            }
        };
        ensure!(
            works(keys[0].0.clone()).await? && works(keys[1].0.clone()).await?,
            "both keys work"
        );

        // The account page lists them; one is revoked there.
        w.b.go(&format!("{base}/account/authorizations")).await?;
        w.b.page("cli-api-keys", "Authorized applications").await?;
        let text = w.b.text().await?;
        ensure!(
            text.contains("laptop script") && text.contains("CI") && text.contains("Identity CLI"),
            "{text}"
        );
        ensure!(!text.contains(&keys[0].0), "no key on the page");
        w.b.press(&format!("Revoke API key {}", keys[0].1)).await?;
        w.b.page("cli-api-key-revoked", "Authorized applications")
            .await?;
        ensure!(
            !w.b.text().await?.contains("laptop script"),
            "gone from the page"
        );
        ensure!(
            !works(keys[0].0.clone()).await?,
            "the revoked key no longer works"
        );
        ensure!(works(keys[1].0.clone()).await?, "the other one still does");

        // The account moves to SSO: long-lived tokens end (the seeds), the CLI's login too.
        w.fresh_browser("cli-headless-upgrade").await?;
        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("max@acme.test", "acme").await?;
        w.b.wait_url("the upgrade page", |u| u.ends_with("/sso/upgrade"))
            .await?;
        w.b.fill("#password", "max's old password").await?;
        w.b.press("Move to single sign-on").await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        ensure!(
            !works(keys[1].0.clone()).await?,
            "the key ended with the move to SSO"
        );
        let who = identity(h, &["whoami"], &[]).await?;
        ensure!(
            who.status.code() == Some(1),
            "the CLI's login ended too: {}",
            stdout(&who)
        );
        Ok(())
    });
}

/// `IDENTITY_LEGACY_SSO=1` in a terminal: no prompt and no browser, the address at once;
/// the person denies the code and the command says so and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sso_login_denied_in_the_browser() {
    journey!("cli-denied", |w| {
        w.service
            .user_with_password("pat@elsewhere.test", "correct horse battery")
            .await?;
        let base = w.base().to_string();
        let home = tempfile::tempdir()?;
        let mut cmd = user_command(home.path(), &["login", "--server", &base]);
        cmd.env("IDENTITY_LEGACY_SSO", "1");
        let mut pty = Pty::spawn(cmd);
        let out = pty.wait_for("Waiting for login...", 30).await?;
        ensure!(!out.contains("Press any key"), "{out}");
        let url = out
            .split_whitespace()
            .find(|w| *w == format!("{base}/device"))
            .ok_or_else(|| format!("no address: {out}"))?
            .to_string();
        let code = printed_code(&out)?;
        answer_in_browser(
            &mut w,
            &url,
            &code,
            "pat@elsewhere.test",
            SignIn::Password("correct horse battery"),
            "Deny",
        )
        .await?;
        w.b.page("cli-denied", "Device not connected").await?;
        let status = pty.exit(30).await?;
        ensure!(status.code() == Some(1), "{}", pty.output());
        ensure!(
            pty.output()
                .contains("error: the login was denied in the browser"),
            "{}",
            pty.output()
        );
        ensure!(!home.path().join("opened").exists(), "no browser");
        ensure!(
            !home
                .path()
                .join("config/identity/credentials.json")
                .exists(),
            "nothing kept"
        );
        Ok(())
    });
}

/// A team admin, from the command line, sees the team's members with their SSO status and
/// blocks one: the member's session ends at once and signing in again shows that the
/// organisation blocked it; unblocked, the member signs in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_admin_blocks_a_member_who_then_sees_the_blocked_page() {
    journey!("org-block", |w| {
        w.service
            .admin(&["team", "add", "--name", "acme"], None)
            .await?;
        w.outside
            .idp_with(&w.service, "acme", "acme.test", &["--team", "acme"])
            .await?;
        for (who, role) in [("boss@acme.test", "admin"), ("pat@acme.test", "member")] {
            w.service
                .admin(&["user", "add", "--email", who], None)
                .await?;
            w.service
                .admin(
                    &["team", "member", "add", "acme", who, "--role", role],
                    None,
                )
                .await?;
        }
        let base = w.base().to_string();
        // Pat signs in through the IdP.
        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("pat@acme.test", "acme").await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        let pats = w.b.cookie("identity_session").await?;

        // The admin logs in from a terminal (another browser answers the code).
        w.fresh_browser("org-block-admin").await?;
        let home = tempfile::tempdir()?;
        let h = home.path();
        login_headless(&mut w, h, "boss@acme.test", SignIn::Sso("acme")).await?;
        let listed = identity(h, &["team", "members", "acme"], &[]).await?;
        ensure!(
            stdout(&listed).contains("pat@acme.test  member  under SSO"),
            "{}{}",
            stdout(&listed),
            stderr(&listed)
        );
        let blocked = identity(h, &["team", "block", "acme", "pat@acme.test"], &[]).await?;
        ensure!(
            blocked.status.success() && stdout(&blocked).contains("Blocked pat@acme.test"),
            "{}{}",
            stdout(&blocked),
            stderr(&blocked)
        );
        let (status, _) = http(
            "GET",
            &format!("{base}/session"),
            &[("Cookie", &format!("identity_session={pats}"))],
            None,
        )
        .await?;
        ensure!(status == 401, "pat's session ended at once: {status}");

        w.fresh_browser("org-block-member").await?;
        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("pat@acme.test", "acme").await?;
        w.b.page("org-blocked", "Account blocked").await?;
        let text = w.b.text().await?;
        ensure!(
            text.contains("Your organisation (team acme) has blocked access to this account"),
            "{text}"
        );

        let unblocked = identity(h, &["team", "unblock", "acme", "pat@acme.test"], &[]).await?;
        ensure!(unblocked.status.success(), "{}", stderr(&unblocked));
        w.b.go(&format!("{base}/login")).await?;
        w.sso_sign_in("pat@acme.test", "acme").await?;
        w.b.wait_url("signed in", |u| u.ends_with("/account/authorizations"))
            .await?;
        Ok(())
    });
}
