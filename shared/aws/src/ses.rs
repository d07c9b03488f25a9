//! Email over Amazon SES (v2 `SendEmail`): a plain-text and an HTML body.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use nambari_core::base::channel::Pipe;
use nambari_core::base::config::Settings;
use nambari_core::ports::messages::Email;
use nambari_core::ports::messages::Templates;
use nambari_core::ports::sender::{NoticeMessage, OtpMessage, SendError, Sender};
use tracing::{debug, instrument};

use crate::sdk::{sdk_config, sdk_reason, send_timeouts};

/// Sends the email template of the message's locale from a fixed address.
#[derive(Clone, Debug)]
pub struct SesEmailSender {
    client: Client,
    templates: Templates,
    from: String,
}

impl SesEmailSender {
    pub fn new(client: Client, templates: Templates, from: String) -> Self {
        Self {
            client,
            templates,
            from,
        }
    }

    /// A sender from the settings (`SES_FROM_ADDRESS`, the message
    /// settings), on SES at `endpoint` when given (e.g. moto); `None`
    /// without a from address.
    pub async fn from_settings(settings: &Settings, endpoint: Option<&str>) -> Option<Self> {
        let from = settings.delivery.ses_from_address.clone()?;
        let config = aws_sdk_sesv2::config::Builder::from(&sdk_config(endpoint).await)
            .timeout_config(send_timeouts())
            .build();
        let client = Client::from_conf(config);
        Some(Self::new(client, Templates::from_settings(settings), from))
    }
}

fn content(data: String) -> Result<Content, SendError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|_| SendError {
            pipe: Pipe::Email,
            reason: "SES email content could not be built".into(),
        })
}

impl SesEmailSender {
    async fn deliver(&self, to: &str, email: Email) -> Result<(), SendError> {
        let message = Message::builder()
            .subject(content(email.subject)?)
            .body(
                Body::builder()
                    .text(content(email.text)?)
                    .html(content(email.html)?)
                    .build(),
            )
            .build();
        let result = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match result {
            Ok(out) => {
                debug!(message_id = out.message_id().unwrap_or(""), "email sent");
                Ok(())
            }
            Err(e) => Err(SendError {
                pipe: Pipe::Email,
                reason: format!("SES SendEmail failed: {}", sdk_reason(&e)),
            }),
        }
    }
}

#[async_trait]
impl Sender for SesEmailSender {
    #[instrument(skip_all, fields(to = %msg.masked_to()))]
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        let email = self.templates.with_ttl(msg.ttl).email(&msg.locale, &msg.code);
        self.deliver(&msg.to, email).await
    }

    #[instrument(skip_all, fields(notice = msg.notice.as_str()))]
    async fn send_notice(&self, msg: &NoticeMessage) -> Result<(), SendError> {
        let email = nambari_core::ports::messages::notice_email(&msg.locale, msg.notice);
        self.deliver(&msg.to, email).await
    }
}
