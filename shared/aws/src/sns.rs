//! SMS over Amazon SNS: `Publish` to a phone number, transactional.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use nambari_core::base::channel::Pipe;
use nambari_core::base::config::Settings;
use nambari_core::ports::messages::Templates;
use nambari_core::ports::sender::{InviteMessage, NoticeMessage, OtpMessage, SendError, Sender};
use tracing::{debug, instrument};

use crate::sdk::{sdk_config, sdk_reason, send_timeouts};

/// Sends the SMS template of the message's locale with SNS `Publish`
/// (`AWS.SNS.SMS.SMSType=Transactional`, and the configured sender id and
/// origination number when set).
#[derive(Clone, Debug)]
pub struct SnsSmsSender {
    client: Client,
    templates: Templates,
    sender_id: Option<String>,
    origination_number: Option<String>,
}

impl SnsSmsSender {
    pub fn new(
        client: Client,
        templates: Templates,
        sender_id: Option<String>,
        origination_number: Option<String>,
    ) -> Self {
        Self {
            client,
            templates,
            sender_id,
            origination_number,
        }
    }

    /// A sender from the settings (`SNS_SENDER_ID`, `SNS_ORIGINATION_NUMBER`,
    /// the message settings), on SNS at `endpoint` when given (e.g. moto).
    pub async fn from_settings(settings: &Settings, endpoint: Option<&str>) -> Self {
        let config = aws_sdk_sns::config::Builder::from(&sdk_config(endpoint).await)
            .timeout_config(send_timeouts())
            .build();
        let client = Client::from_conf(config);
        Self::new(
            client,
            Templates::from_settings(settings),
            settings.delivery.sns_sender_id.clone(),
            settings.delivery.sns_origination_number.clone(),
        )
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, SendError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|_| SendError {
            pipe: Pipe::Sms,
            reason: "SNS message attribute could not be built".into(),
        })
}

#[async_trait]
impl Sender for SnsSmsSender {
    #[instrument(skip_all, fields(to = %msg.masked_to()))]
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        let publish = self.with_attributes(
            self.client
                .publish()
                .phone_number(&msg.to)
                .message(self.templates.with_ttl(msg.ttl).sms(&msg.locale, &msg.code)),
        )?;
        self.publish(publish).await
    }

    #[instrument(skip_all)]
    async fn send_invite(&self, msg: &InviteMessage) -> Result<(), SendError> {
        let text = nambari_core::ports::messages::invite_sms(&msg.locale, &msg.link);
        let publish = self.with_attributes(self.client.publish().phone_number(&msg.to).message(text))?;
        self.publish(publish).await
    }

    #[instrument(skip_all, fields(notice = msg.notice.as_str()))]
    async fn send_notice(&self, msg: &NoticeMessage) -> Result<(), SendError> {
        let text = nambari_core::ports::messages::notice_sms(&msg.locale, msg.notice);
        let publish = self.with_attributes(self.client.publish().phone_number(&msg.to).message(text))?;
        self.publish(publish).await
    }
}

impl SnsSmsSender {
    /// The transactional type, sender id and origination number attributes.
    fn with_attributes(
        &self,
        mut publish: aws_sdk_sns::operation::publish::builders::PublishFluentBuilder,
    ) -> Result<aws_sdk_sns::operation::publish::builders::PublishFluentBuilder, SendError> {
        publish = publish.message_attributes("AWS.SNS.SMS.SMSType", attribute("Transactional")?);
        if let Some(id) = &self.sender_id {
            publish = publish.message_attributes("AWS.SNS.SMS.SenderID", attribute(id)?);
        }
        if let Some(number) = &self.origination_number {
            publish = publish.message_attributes("AWS.MM.SMS.OriginationNumber", attribute(number)?);
        }
        Ok(publish)
    }

    async fn publish(
        &self,
        publish: aws_sdk_sns::operation::publish::builders::PublishFluentBuilder,
    ) -> Result<(), SendError> {
        match publish.send().await {
            Ok(out) => {
                debug!(message_id = out.message_id().unwrap_or(""), "SMS published");
                Ok(())
            }
            Err(e) => Err(SendError {
                pipe: Pipe::Sms,
                reason: format!("SNS Publish failed: {}", sdk_reason(&e)),
            }),
        }
    }
}
