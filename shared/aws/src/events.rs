//! Events (SPEC §6) on an SNS topic: one `Publish` per event, the JSON as
//! the message and the event type as the `type` message attribute (so
//! subscriptions can filter on it).

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use nambari_core::ports::events::{Event, Events};

use crate::sdk::{sdk_config, sdk_reason, send_timeouts};

/// Publishes events to `EVENTS_TOPIC_ARN`.
#[derive(Clone, Debug)]
pub struct SnsEvents {
    client: Client,
    topic_arn: String,
}

impl SnsEvents {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// On SNS at `endpoint` when given (e.g. moto).
    pub async fn connect(topic_arn: &str, endpoint: Option<&str>) -> Self {
        let config = aws_sdk_sns::config::Builder::from(&sdk_config(endpoint).await)
            .timeout_config(send_timeouts())
            .build();
        Self::new(Client::from_conf(config), topic_arn)
    }
}

#[async_trait]
impl Events for SnsEvents {
    async fn publish(&self, event: &Event) -> Result<(), String> {
        let kind = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(event.kind.as_str())
            .build()
            .map_err(|_| "the type attribute could not be built".to_owned())?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(event.to_json())
            .message_attributes("type", kind)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("SNS Publish failed: {}", sdk_reason(&e)))
    }
}
