//! Secrets from AWS Secrets Manager (`GetSecretValue`, string secrets).

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use nambari_core::ports::secrets::{FetchError, SecretSource};
use secrecy::SecretString;

use crate::sdk::{sdk_config, sdk_reason};

/// The [`SecretSource`] of a deployment: Secrets Manager, by ARN or name.
#[derive(Clone, Debug)]
pub struct SecretsManagerSource {
    client: Client,
}

impl SecretsManagerSource {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A source on Secrets Manager at `endpoint` when given (e.g. moto).
    pub async fn connect(endpoint: Option<&str>) -> Self {
        Self::new(Client::new(&sdk_config(endpoint).await))
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn fetch(&self, id: &str) -> Result<SecretString, FetchError> {
        match self.client.get_secret_value().secret_id(id).send().await {
            Ok(out) => out
                .secret_string()
                .map(|s| SecretString::from(s.to_owned()))
                .ok_or_else(|| FetchError::Failed("it has no string value (binary secrets are not read)".into())),
            Err(e) => {
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                {
                    Err(FetchError::NotFound)
                } else {
                    Err(FetchError::Failed(sdk_reason(&e)))
                }
            }
        }
    }
}
