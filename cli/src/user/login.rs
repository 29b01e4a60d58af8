//! `identity login`: the device authorization grant (RFC 8628) with the CLI's own public
//! client, as `heroku login` does it under SSO. The person signs in on the verification
//! page (SSO or password, as anywhere else) and confirms the code; this side polls by the
//! RFC's rules and keeps the tokens.

use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use identity_shared::oauth::client::{CLI_CLIENT_ID, CLI_CLIENT_SCOPE};

use super::credentials::Credentials;
use super::net::{Body, Server};
use super::{Failure, Target, email_of, server, tokens_of};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.5: the interval grows by 5 s at each `slow_down`.
const SLOW_DOWN_SECS: u64 = 5;

/// What the device authorization answered.
struct Started {
    device_code: String,
    user_code: String,
    /// The address to open: with the code in it, or (for a login with full access, whose
    /// code the person types) the bare verification page.
    uri_complete: String,
    /// The server wants the code typed (it sent no address with the code in it).
    typed: bool,
    interval: u64,
    expires_in: u64,
}

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

pub async fn login(target: &Target, headless: bool) -> Result<(), Failure> {
    let mut creds = Credentials::load()?;
    let server = server(target, &creds)?;
    let headless = headless
        || std::env::var("IDENTITY_LEGACY_SSO").as_deref() == Ok("1")
        || !std::io::stdin().is_terminal();
    let started = start(&server).await?;
    let verb = if started.typed { "type" } else { "confirm" };
    if headless {
        say(&format!(
            "Open this address in a browser and {verb} the code {}:",
            started.user_code
        ));
        say(&format!("  {}", started.uri_complete));
    } else {
        say("Press any key to open up the browser to login or q to exit");
        say(&format!(
            "  {}  (code {})",
            started.uri_complete, started.user_code
        ));
        let key = tokio::task::spawn_blocking(read_key)
            .await
            .map_err(|_| Failure("could not read the terminal".into()))?;
        if matches!(key, Some(b'q' | b'Q') | None) {
            return Err(Failure("login cancelled".into()));
        }
        if open_browser(&started.uri_complete) {
            say(&format!("Opening browser to {}", started.uri_complete));
        } else {
            say("Could not open a browser: open the address above yourself");
        }
        if started.typed {
            say(&format!(
                "Type the code {} on that page when it asks",
                started.user_code
            ));
        }
    }
    say("Waiting for login...");
    let tokens = poll(&server, &started).await?;
    let email = email_of(&server, tokens["access_token"].as_str().unwrap_or("")).await?;
    let login = tokens_of(&tokens, email.clone(), CLI_CLIENT_ID)?;
    creds.servers.insert(server.base.clone(), login);
    creds.default_server = Some(server.base.clone());
    creds.save()?;
    say("Logging in... done");
    say(&format!("Logged in as {email}"));
    Ok(())
}

async fn start(server: &Server) -> Result<Started, Failure> {
    let answer = server
        .send(
            Method::POST,
            "/oauth/device/authorize",
            None,
            Body::Form(&[("client_id", CLI_CLIENT_ID), ("scope", CLI_CLIENT_SCOPE)]),
        )
        .await?;
    if answer.status != StatusCode::OK {
        let why = if answer.error() == "invalid_client" {
            format!(
                "{} does not know the CLI's client ({CLI_CLIENT_ID}); its operator runs identity admin client add-cli",
                server.base
            )
        } else {
            answer.explanation()
        };
        return Err(Failure(format!(
            "the server refused to start a login: {why}"
        )));
    }
    let j = &answer.json;
    let text = |name: &str| {
        j[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Failure(format!("the server's device answer has no {name}")))
    };
    let user_code = text("user_code")?;
    let (uri_complete, typed) = match j["verification_uri_complete"].as_str() {
        Some(u) => (u.to_string(), false),
        None => (text("verification_uri")?, true),
    };
    // The address is opened in a browser: it must be the server's own kind of URL.
    identity_shared::config::https_or_loopback(&uri_complete)
        .map_err(|why| Failure(format!("the server's verification address: {why}")))?;
    Ok(Started {
        device_code: text("device_code")?,
        user_code,
        uri_complete,
        typed,
        // RFC 8628 §3.2: 5 s when the server names no interval.
        interval: j["interval"].as_u64().unwrap_or(5).max(1),
        expires_in: j["expires_in"].as_u64().unwrap_or(600),
    })
}

/// Polls the token endpoint until the person answers (RFC 8628 §3.4–3.5): pending waits
/// the interval, `slow_down` adds 5 s to it for every later poll, `expired_token` and
/// `access_denied` end the login.
async fn poll(server: &Server, started: &Started) -> Result<serde_json::Value, Failure> {
    let mut interval = started.interval;
    let deadline = Instant::now() + Duration::from_secs(started.expires_in);
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let answer = server
            .token(&[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", &started.device_code),
                ("client_id", CLI_CLIENT_ID),
            ])
            .await?;
        if answer.status == StatusCode::OK {
            return Ok(answer.json);
        }
        match answer.error() {
            "authorization_pending" => {}
            "slow_down" => interval += SLOW_DOWN_SECS,
            "expired_token" => {
                return Err(Failure(
                    "the code expired before the login was confirmed: run identity login again"
                        .into(),
                ));
            }
            "access_denied" => {
                return Err(Failure("the login was denied in the browser".into()));
            }
            _ => {
                return Err(Failure(format!(
                    "the login failed: {}",
                    answer.explanation()
                )));
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure(
                "the code expired before the login was confirmed: run identity login again".into(),
            ));
        }
    }
}

/// One key press from the terminal on stdin (`stty` puts it in non-canonical mode without
/// echo for the read, and restores what it was). `None` at end of input.
fn read_key() -> Option<u8> {
    let stty = |args: &[&str]| {
        Command::new("stty")
            .args(args)
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let saved = stty(&["-g"]).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let raw = saved.is_some() && stty(&["-icanon", "-echo", "min", "1"]).is_some();
    let mut byte = [0u8; 1];
    let read = std::io::stdin().read(&mut byte);
    if raw && let Some(saved) = &saved {
        stty(&[saved.as_str()]);
    }
    match read {
        Ok(1) => Some(byte[0]),
        _ => None,
    }
}

/// Opens `url` with `$BROWSER` (a `:`-separated list of commands; `%s` stands for the URL,
/// else it is appended), then `xdg-open`. True when one of them started.
fn open_browser(url: &str) -> bool {
    let mut commands: Vec<String> = std::env::var("BROWSER")
        .unwrap_or_default()
        .split(':')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    commands.push("xdg-open".into());
    commands.iter().any(|command| {
        let mut words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        if words.iter().any(|w| w.contains("%s")) {
            for w in &mut words {
                *w = w.replace("%s", url);
            }
        } else {
            words.push(url.to_string());
        }
        let Some((program, args)) = words.split_first() else {
            return false;
        };
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .is_ok()
    })
}
