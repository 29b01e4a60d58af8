//! Mail that reaches people: the outbox's messages (welcome links, password-reset links,
//! confirmations of an account coming under SSO) are sent through Amazon SES when
//! `IDENTITY_MAIL_FROM` names the sender, with `IDENTITY_SES_CONFIGURATION_SET` when given.
//! Without it they stay in the outbox with a log line (`LoggingSender`), for
//! `identity admin outbox`. A message SES refuses stays in the outbox too, and the refusal
//! is logged (never the body: it carries a live link).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use identity_shared::AppState;
use identity_shared::accounts::Email;
use identity_shared::outbox::{EmailSender, OutboxMessage, SealedBody};
use identity_shared::secrets::Secrets;

#[derive(Debug)]
pub struct SesSender {
    client: Client,
    from: Email,
    configuration_set: Option<String>,
    secrets: Arc<Secrets>,
}

impl SesSender {
    pub fn new(
        client: Client,
        from: Email,
        configuration_set: Option<String>,
        secrets: Arc<Secrets>,
    ) -> Self {
        Self {
            client,
            from,
            configuration_set,
            secrets,
        }
    }
}

/// The state with the mail the environment asks for: SES from `IDENTITY_MAIL_FROM` when it
/// is set (its client made from the state's SDK configuration when it has one, sharing its
/// HTTP client), else the state as it is. An `IDENTITY_MAIL_FROM` that is not an email
/// address is an error: the process does not start. The sso-acs Lambda and `identity serve`
/// both start through here.
pub async fn configure(state: AppState) -> Result<AppState, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let Some(from) = var("IDENTITY_MAIL_FROM") else {
        return Ok(state);
    };
    let from = Email::parse(&from)
        .map_err(|_| format!("IDENTITY_MAIL_FROM is not an email address: {from:?}"))?;
    let client = match &state.aws {
        Some(sdk) => Client::new(sdk),
        None => Client::new(&identity_shared::aws::sdk_config().await),
    };
    let ses = SesSender::new(
        client,
        from,
        var("IDENTITY_SES_CONFIGURATION_SET"),
        state.secrets.clone(),
    );
    Ok(state.with_mail(Arc::new(ses)))
}

fn content(text: &str) -> Result<Content, String> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| e.to_string())
}

#[async_trait]
impl EmailSender for SesSender {
    async fn send(&self, message: &OutboxMessage) -> Result<(), String> {
        let keys = self
            .secrets
            .cookie_keys()
            .await
            .map_err(|e| format!("cookie keys: {e}"))?;
        let body = message
            .body(&keys)
            .ok_or("the message no longer opens (its key was rotated away)")?;
        let email = EmailContent::builder()
            .simple(
                Message::builder()
                    .subject(content(&message.subject)?)
                    .body(Body::builder().text(content(body.expose_secret())?).build())
                    .build(),
            )
            .build();
        let sent = self
            .client
            .send_email()
            .from_email_address(self.from.as_str())
            .destination(Destination::builder().to_addresses(&message.to).build())
            .content(email)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| format!("SES SendEmail: {}", e.code().unwrap_or("request failed")))?;
        let domain = message.to.rsplit('@').next().unwrap_or("");
        tracing::info!(
            to_domain = domain,
            subject = %message.subject,
            message_id = sent.message_id().unwrap_or(""),
            "message sent through SES"
        );
        Ok(())
    }
}
