//! Mail through Amazon SES (functions/sso-acs/src/mail.rs), against moto's SES: a password
//! reset reaches the person's address with its link; a message SES refuses stays in the
//! outbox with a log line that never shows its link.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode, header};
use identity_shared::accounts::{AccountStatus, Accounts, Email};
use identity_shared::outbox::Outbox;
use identity_shared::secret::SecretString;
use identity_tests::{CapturedLogs, app_state};
use sso_acs::mail::SesSender;
use tower::ServiceExt;

const BASE: &str = "http://127.0.0.1:3000";

async fn ses() -> Option<(aws_sdk_sesv2::Client, String)> {
    // moto's one server answers every service, SES included.
    let endpoint = identity_tests::secretsmanager_endpoint()?;
    let client = aws_sdk_sesv2::Client::new(&identity_tests::local_sdk_config(&endpoint).await);
    Some((client, endpoint))
}

/// Asks for a password reset for `to` through the sso-acs routes, with mail going through
/// SES from `from` (a sender built on the app's own keys, which open the sealed body).
async fn reset_through(
    to: &str,
    from: &str,
    client: &aws_sdk_sesv2::Client,
    logs: &CapturedLogs,
) -> (identity_shared::AppState, tempfile::TempDir) {
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (state, _clock, dir) = app_state().await;
    let email = Email::parse(to).unwrap();
    state
        .store
        .create_account(
            &email,
            Some(&SecretString::new("an old password 0123")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let sender = SesSender::new(
        client.clone(),
        Email::parse(from).unwrap(),
        None,
        state.secrets.clone(),
    );
    let state = state.with_mail(Arc::new(sender));
    let response = identity_cli::router(state.clone())
        .oneshot(
            Request::post("/account/password/reset")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, BASE)
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(format!("email={}", to.replace('@', "%40"))))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the same page either way"
    );
    (state, dir)
}

/// What was logged; it never holds a reset link.
fn logs_without_link(logs: &CapturedLogs) -> String {
    let said = String::from_utf8_lossy(&logs.contents()).to_string();
    assert!(
        !said.contains("/account/password/reset/"),
        "no link in the logs"
    );
    said
}

/// How many messages to `to` the outbox holds.
async fn waiting(state: &identity_shared::AppState, to: &str) -> usize {
    state
        .store
        .outbox(Some(&Email::parse(to).unwrap()))
        .await
        .unwrap()
        .len()
}

/// The messages moto's SES holds (its model data, `GET /moto-api/data.json`).
fn sent(endpoint: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new("curl")
        .args(["-sf", &format!("{endpoint}/moto-api/data.json")])
        .output()
        .expect("curl (tests/run.sh installs it)");
    assert!(out.status.success(), "moto's model data");
    let data: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_reset_link_reaches_the_person_through_ses() {
    let Some((client, endpoint)) = ses().await else {
        return;
    };
    let from = format!("identity-{}@mail.example.com", std::process::id());
    client
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("a verified sender in moto");
    let to = format!("forgot-{}@plain.example", uuid::Uuid::new_v4().simple());
    let logs = CapturedLogs::default();
    let (state, _dir) = reset_through(&to, &from, &client, &logs).await;
    let messages = sent(&endpoint);
    let mine: Vec<&serde_json::Value> = messages
        .iter()
        .filter(|m| m["destinations"]["ToAddresses"][0].as_str() == Some(to.as_str()))
        .collect();
    assert_eq!(mine.len(), 1, "one message to {to}");
    assert_eq!(mine[0]["source"].as_str(), Some(from.as_str()));
    assert_eq!(mine[0]["subject"].as_str(), Some("Reset your password"));
    let body = mine[0]["body"].as_str().unwrap();
    assert!(
        body.contains("http://127.0.0.1:3000/account/password/reset/"),
        "the link is in the mail"
    );
    let said = logs_without_link(&logs);
    assert!(said.contains("message sent through SES"), "{said}");
    assert_eq!(waiting(&state, &to).await, 1, "the outbox keeps its copy");
}

#[tokio::test]
async fn a_message_ses_refuses_stays_in_the_outbox_and_the_log_shows_no_link() {
    let Some((client, endpoint)) = ses().await else {
        return;
    };
    // Never verified: SES refuses to send from it.
    let from = format!(
        "unverified-{}@nowhere.example",
        uuid::Uuid::new_v4().simple()
    );
    let to = format!("forgot-{}@plain.example", uuid::Uuid::new_v4().simple());
    let logs = CapturedLogs::default();
    let (state, _dir) = reset_through(&to, &from, &client, &logs).await;
    let said = logs_without_link(&logs);
    assert!(said.contains("message not handed to the sender"), "{said}");
    assert!(said.contains("SES SendEmail"), "{said}");
    assert_eq!(
        waiting(&state, &to).await,
        1,
        "the message waits in the outbox"
    );
    assert!(
        !sent(&endpoint)
            .iter()
            .any(|m| m["destinations"]["ToAddresses"][0].as_str() == Some(to.as_str()))
    );
}
