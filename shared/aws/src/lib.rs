//! AWS adapters for Nambari: the DynamoDB implementation of the storage
//! port, SMS over SNS, email over SES and secrets from Secrets Manager.

pub mod dynamo;
pub mod events;
pub mod sdk;
pub mod secrets;
pub mod ses;
pub mod sns;

pub use dynamo::{DynamoTable, client, create_table};
pub use events::SnsEvents;
pub use sdk::sdk_config;
pub use secrets::SecretsManagerSource;
pub use ses::SesEmailSender;
pub use sns::SnsSmsSender;
