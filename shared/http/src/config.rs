//! Configuration at cold start: plain settings from the environment
//! (documented in the README), the DynamoDB table, and the secrets.
//!
//! Secrets come from the environment for now — `SIGNING_KEYS` (the JSON
//! key set: `{"current":{"kid","pem"},"previous":…}`) and `OTP_PEPPER`
//! (hex, at least 16 bytes). A missing or malformed secret fails the cold
//! start with a message naming the secret, never showing its value.

use std::fmt;
use std::sync::Arc;

use nambari_core::App;
use nambari_core::clock::SystemClock;
use nambari_core::config::Settings;
use nambari_core::otp::Pepper;
use nambari_core::sender::{OtpMessage, SendError, Sender};
use nambari_core::tokens::{KeyRing, KeySet};

/// Why a cold start failed: names the setting or secret, never its value.
#[derive(Debug)]
pub struct StartupError(pub String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The settings of SPEC §9 from the environment.
pub fn settings_from_env() -> Result<Settings, StartupError> {
    Settings::from_lookup(env).map_err(|e| StartupError(format!("{e:?}")))
}

/// The signing keys from the secret `name` (a JSON key set).
pub fn key_ring(json: Option<String>, name: &str, settings: &Settings) -> Result<KeyRing, StartupError> {
    let json = json.ok_or_else(|| StartupError(format!("secret {name} is missing")))?;
    let set: KeySet =
        serde_json::from_str(&json).map_err(|_| StartupError(format!("secret {name} is not a JSON key set")))?;
    KeyRing::from_set(&set, &settings.issuer, &settings.audience)
        .map_err(|_| StartupError(format!("secret {name} holds a key that is not a PKCS#8 P-256 PEM key")))
}

/// The OTP pepper from the secret `name` (hex).
pub fn pepper(hex_value: Option<String>, name: &str) -> Result<Pepper, StartupError> {
    let v = hex_value.ok_or_else(|| StartupError(format!("secret {name} is missing")))?;
    let bytes = hex::decode(v.trim()).map_err(|_| StartupError(format!("secret {name} is not hex")))?;
    Pepper::new(bytes).map_err(|_| StartupError(format!("secret {name} must be at least 16 bytes")))
}

/// The App of a Lambda function: DynamoDB (`DYNAMODB_ENDPOINT` overrides
/// the endpoint, e.g. for moto), secrets from the environment.
pub async fn app_from_env() -> Result<App, StartupError> {
    let settings = settings_from_env()?;
    let keys = key_ring(env("SIGNING_KEYS"), "SIGNING_KEYS", &settings)?;
    let pepper = pepper(env("OTP_PEPPER"), "OTP_PEPPER")?;
    let client = nambari_aws::client(env("DYNAMODB_ENDPOINT").as_deref()).await;
    let table = nambari_aws::DynamoTable::new(client, settings.table_name.clone());
    // Real delivery arrives with SNS/SES/WhatsApp; until then only sandbox
    // stages (codes in the response) can send.
    let sender: Arc<dyn Sender> = Arc::new(NullSender {
        deliver: settings.sandbox,
    });
    Ok(App::new(
        settings,
        Arc::new(table),
        Arc::new(SystemClock),
        Arc::new(keys),
        pepper,
        sender,
    ))
}

/// Sends nothing: succeeds in sandbox (the code is in the response), fails
/// otherwise so that no flow pretends a code went out.
pub struct NullSender {
    pub deliver: bool,
}

#[async_trait::async_trait]
impl Sender for NullSender {
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        if self.deliver {
            Ok(())
        } else {
            Err(SendError {
                pipe: msg.pipe,
                reason: "no delivery channel is configured".into(),
            })
        }
    }
}
