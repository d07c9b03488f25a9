//! Configuration at cold start: plain settings from the environment
//! (documented in the README), the DynamoDB table, the secrets and the
//! senders.
//!
//! Secrets (signing keys, OTP pepper, API-key pepper, WhatsApp token) come
//! from Secrets Manager, named by `SIGNING_KEYS_SECRET_ARN`,
//! `OTP_PEPPER_SECRET_ARN`, `API_KEY_PEPPER_SECRET_ARN` and
//! `WHATSAPP_TOKEN_SECRET_ARN`; for local runs `SIGNING_KEYS`, `OTP_PEPPER`,
//! `API_KEY_PEPPER` and `WHATSAPP_TOKEN` may hold the values themselves. A
//! missing or malformed secret fails the cold start with a message naming
//! the secret, never showing its value. Secrets Manager secrets are read
//! again at most every 5 minutes: `run` calls
//! [`SecretsRefresher::refresh_if_due`] before each request.
//!
//! `SENDERS=real` (the default) sends SMS over SNS, WhatsApp over the Cloud
//! API and email over SES; `SNS_ENDPOINT`, `SES_ENDPOINT`,
//! `SECRETS_ENDPOINT` (like `DYNAMODB_ENDPOINT`) point a client at another
//! endpoint, e.g. moto.

use std::fmt;
use std::sync::Arc;

use nambari_aws::{SecretsManagerSource, SesEmailSender, SnsSmsSender};
use nambari_core::App;
use nambari_core::app::Needs;
use nambari_core::base::channel::Pipe;
use nambari_core::base::config::{SenderMode, Settings};
use nambari_core::base::otp::Pepper;
use nambari_core::base::tokens::KeyRing;
use nambari_core::ports::clock::{Clock, SystemClock};
use nambari_core::ports::secrets::{
    self, Live, LiveSecrets, SecretRefs, SecretSource, SecretsError, SecretsRefresher, WHATSAPP_TOKEN, Wanted,
};
use nambari_core::ports::sender::{ConsoleSender, InviteMessage, MultiSender, OtpMessage, SendError, Sender};
use nambari_core::ports::table::Db;
use nambari_whatsapp::{WhatsAppConfig, WhatsAppSender};
use secrecy::SecretString;

/// Why a cold start failed: names the setting or secret, never its value.
#[derive(Debug)]
pub struct StartupError(pub String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

impl From<SecretsError> for StartupError {
    fn from(e: SecretsError) -> Self {
        StartupError(e.0)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn setting_err(e: nambari_core::Error) -> StartupError {
    match e {
        nambari_core::Error::Internal(m) => StartupError(m),
        other => StartupError(format!("{other:?}")),
    }
}

/// The settings (docs/DESIGN.md §9) from the environment.
pub fn settings_from_env() -> Result<Settings, StartupError> {
    Settings::from_lookup(env).map_err(setting_err)
}

/// The signing keys from the secret `name` (a JSON key set).
pub fn key_ring(json: Option<String>, name: &str, settings: &Settings) -> Result<KeyRing, StartupError> {
    let json = json.ok_or_else(|| StartupError(format!("secret {name} is missing")))?;
    Ok(secrets::parse_key_ring(
        &json,
        name,
        &settings.issuer,
        &settings.audience,
    )?)
}

/// The OTP pepper from the secret `name` (hex).
pub fn pepper(hex_value: Option<String>, name: &str) -> Result<Pepper, StartupError> {
    let v = hex_value.ok_or_else(|| StartupError(format!("secret {name} is missing")))?;
    Ok(secrets::parse_pepper(&v, name)?)
}

/// Endpoint overrides of the delivery clients (moto, LocalStack); `None`
/// is AWS.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    /// `SNS_ENDPOINT`
    pub sns: Option<String>,
    /// `SES_ENDPOINT`
    pub ses: Option<String>,
}

impl Endpoints {
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Self {
        let set = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Self {
            sns: set("SNS_ENDPOINT"),
            ses: set("SES_ENDPOINT"),
        }
    }
}

/// The real senders behind one [`MultiSender`]: SMS over SNS, email over
/// SES, and WhatsApp over the Cloud API when the deployment offers it
/// (`whatsapp_token` is then required).
pub async fn real_sender(
    settings: &Settings,
    endpoints: &Endpoints,
    whatsapp_token: Option<Arc<Live<SecretString>>>,
) -> Result<MultiSender, StartupError> {
    settings.delivery.check_real(&settings.channels).map_err(setting_err)?;
    let sms = SnsSmsSender::from_settings(settings, endpoints.sns.as_deref()).await;
    let email = SesEmailSender::from_settings(settings, endpoints.ses.as_deref())
        .await
        .ok_or_else(|| StartupError("setting SES_FROM_ADDRESS: is required to send real email".into()))?;
    let whatsapp: Option<Arc<dyn Sender>> = if settings.channels.contains(&Pipe::Whatsapp) {
        let config = WhatsAppConfig::from_settings(settings)
            .ok_or_else(|| StartupError("setting WHATSAPP_PHONE_NUMBER_ID: is required".into()))?;
        let token = whatsapp_token.ok_or_else(|| {
            StartupError(format!(
                "secret {} is not set (for a local run, {} may hold the value itself)",
                WHATSAPP_TOKEN.managed, WHATSAPP_TOKEN.inline
            ))
        })?;
        Some(Arc::new(
            WhatsAppSender::new(config, token).map_err(|e| StartupError(e.to_string()))?,
        ))
    } else {
        None
    };
    Ok(MultiSender {
        sms: Some(Arc::new(sms)),
        whatsapp,
        email: Some(Arc::new(email)),
    })
}

/// A started function: its App and, when secrets come from Secrets
/// Manager, what re-reads them (call `refresh_if_due` before each request).
pub struct Started {
    pub app: App,
    pub refresher: Option<SecretsRefresher>,
}

/// A function's App from the environment (see [`start_from_lookup`]).
pub async fn start_from_env(needs: Needs) -> Result<Started, StartupError> {
    start_from_lookup(needs, env, Arc::new(SystemClock)).await
}

/// The secrets `needs` implies: the WhatsApp token only where WhatsApp
/// messages are really sent.
pub fn wanted(needs: Needs, settings: &Settings) -> Wanted {
    let real = needs.senders && settings.delivery.senders == SenderMode::Real;
    Wanted {
        signing_keys: needs.signing_keys,
        otp_pepper: needs.otp_pepper,
        api_key_pepper: needs.api_key_pepper,
        whatsapp_token: real && settings.channels.contains(&Pipe::Whatsapp),
    }
}

/// The App of a Lambda function that declares `needs`, from settings read
/// through `get`: only what `needs` names is built or read — the DynamoDB
/// client (`DYNAMODB_ENDPOINT` overrides the endpoint), the secrets, the
/// senders of `SENDERS` (`real` or `none`; `console` is local mode's), the
/// idToken verifier and the events topic.
pub async fn start_from_lookup(
    needs: Needs,
    get: impl Fn(&str) -> Option<String>,
    clock: Arc<dyn Clock>,
) -> Result<Started, StartupError> {
    let settings = Settings::from_lookup(&get).map_err(setting_err)?;
    let mode = settings.delivery.senders;
    if mode == SenderMode::Console {
        return Err(StartupError(
            "setting SENDERS: console prints codes and is only for local mode (use real or none)".into(),
        ));
    }
    if needs.senders && mode == SenderMode::Real {
        settings.delivery.check_real(&settings.channels).map_err(setting_err)?;
    }
    let refs = SecretRefs::from_lookup(&get, wanted(needs, &settings))?;
    let source: Option<Arc<dyn SecretSource>> = if refs.any_managed() {
        let endpoint = get("SECRETS_ENDPOINT").filter(|v| !v.trim().is_empty());
        Some(Arc::new(SecretsManagerSource::connect(endpoint.as_deref()).await))
    } else {
        None
    };
    let loaded = secrets::load(&refs, source.as_deref(), &settings.issuer, &settings.audience).await?;
    let read_at = clock.now_secs();
    let whatsapp_token = loaded.whatsapp_token.map(|t| Arc::new(Live::new(t)));
    let db = if needs.store {
        let client = nambari_aws::client(get("DYNAMODB_ENDPOINT").as_deref()).await;
        Db::new(Arc::new(nambari_aws::DynamoTable::new(
            client,
            settings.table_name.clone(),
        )))
    } else {
        Db::absent()
    };
    let mut app = App::bare(settings, db, clock.clone(), needs);
    if let Some(keys) = loaded.keys {
        app = app.with_keys(Arc::new(Live::new(keys)));
    }
    if let Some(p) = loaded.otp_pepper {
        app = app.with_pepper(Arc::new(Live::new(p)));
    }
    if let Some(p) = loaded.api_key_pepper {
        app = app.with_api_key_pepper(Arc::new(Live::new(p)));
    }
    if needs.senders {
        let sender: Arc<dyn Sender> = match mode {
            SenderMode::Real => {
                Arc::new(real_sender(&app.settings, &Endpoints::from_lookup(&get), whatsapp_token.clone()).await?)
            }
            // Only sandbox stages (codes in the response) can work without senders.
            _ => Arc::new(NullSender {
                deliver: app.settings.sandbox,
            }),
        };
        app = app.with_sender(sender);
    }
    app = attach_adapters(app, &get).await?;
    let (issuer, audience) = (app.settings.issuer.clone(), app.settings.audience.clone());
    let refresher = source.map(|source| {
        let live = LiveSecrets {
            keys: app.live_keys(),
            otp_pepper: app.live_pepper(),
            api_key_pepper: app.live_api_key_pepper(),
            whatsapp_token,
        };
        SecretsRefresher::new(refs, source, live, clock, &issuer, &audience, read_at)
    });
    Ok(Started { app, refresher })
}

/// The optional adapters of an App that its needs name: the idToken
/// verifier when a provider has client ids (`GOOGLE_CLIENT_IDS`,
/// `APPLE_CLIENT_IDS`), and the SNS events topic when `EVENTS_TOPIC_ARN`
/// is set (on `SNS_ENDPOINT` if given).
pub async fn attach_adapters(mut app: App, get: &impl Fn(&str) -> Option<String>) -> Result<App, StartupError> {
    if app.needs.oauth
        && let Some(v) = nambari_oauth::JwksVerifier::from_settings(&app.settings.oauth).map_err(StartupError)?
    {
        app = app.with_oauth(Some(Arc::new(v)));
    }
    if app.needs.events
        && let Some(arn) = app.settings.events_topic_arn.clone()
    {
        let endpoint = Endpoints::from_lookup(get).sns;
        app = app.with_events(Arc::new(
            nambari_aws::SnsEvents::connect(&arn, endpoint.as_deref()).await,
        ));
    }
    Ok(app)
}

/// Local mode's sender for `settings.delivery.senders`: the console (its
/// default), the real senders at `endpoints` (the WhatsApp token from
/// `WHATSAPP_TOKEN`), or none.
pub async fn local_sender(
    settings: &Settings,
    endpoints: &Endpoints,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Sender>, StartupError> {
    match settings.delivery.senders {
        SenderMode::Console => Ok(Arc::new(ConsoleSender)),
        SenderMode::None => Ok(Arc::new(NullSender {
            deliver: settings.sandbox,
        })),
        SenderMode::Real => {
            let token = match get(WHATSAPP_TOKEN.inline).filter(|v| !v.trim().is_empty()) {
                Some(v) => Some(Arc::new(Live::new(secrets::parse_token(&v, WHATSAPP_TOKEN.inline)?))),
                None => None,
            };
            let sender = real_sender(settings, endpoints, token).await.map_err(|e| {
                if e.0.contains(WHATSAPP_TOKEN.managed) {
                    StartupError(format!(
                        "{} must hold the WhatsApp token for real WhatsApp messages in local mode",
                        WHATSAPP_TOKEN.inline
                    ))
                } else {
                    e
                }
            })?;
            Ok(Arc::new(sender))
        }
    }
}

/// Sends nothing: succeeds in sandbox (the code is in the response), fails
/// otherwise so that no flow pretends a code went out.
pub struct NullSender {
    pub deliver: bool,
}

#[async_trait::async_trait]
impl Sender for NullSender {
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        self.outcome(msg.pipe)
    }

    async fn send_invite(&self, msg: &InviteMessage) -> Result<(), SendError> {
        self.outcome(msg.pipe)
    }
}

impl NullSender {
    fn outcome(&self, pipe: Pipe) -> Result<(), SendError> {
        if self.deliver {
            Ok(())
        } else {
            Err(SendError {
                pipe,
                reason: "no delivery channel is configured".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&'static str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        move |k: &str| map.get(k).cloned()
    }

    fn inline_secrets() -> Vec<(&'static str, String)> {
        let set = KeyRing::generate_set().unwrap();
        vec![
            ("SIGNING_KEYS", serde_json::to_string(&set).unwrap()),
            ("OTP_PEPPER", "00112233445566778899aabbccddeeff".into()),
        ]
    }

    async fn start_error(pairs: &[(&'static str, String)]) -> String {
        // A function that sends and reads the signing keys and the OTP pepper.
        let needs = Needs {
            api_key_pepper: false,
            ..Needs::ALL
        };
        match start_from_lookup(needs, lookup(pairs), Arc::new(SystemClock)).await {
            Ok(_) => String::new(),
            Err(e) => e.0,
        }
    }

    #[tokio::test]
    async fn real_senders_need_their_settings_and_the_whatsapp_token() {
        let mut pairs = inline_secrets();
        let e = start_error(&pairs).await;
        assert!(e.contains("WEBOTP_DOMAIN"), "{e}");
        pairs.push(("WEBOTP_DOMAIN", "example.com".into()));
        pairs.push(("SES_FROM_ADDRESS", "no-reply@example.com".into()));
        pairs.push(("WHATSAPP_PHONE_NUMBER_ID", "1065".into()));
        let e = start_error(&pairs).await;
        assert!(e.contains("WHATSAPP_TOKEN_SECRET_ARN"), "{e}");
    }

    #[tokio::test]
    async fn the_console_sender_is_refused_outside_local_mode() {
        let mut pairs = inline_secrets();
        pairs.push(("SENDERS", "console".into()));
        assert!(start_error(&pairs).await.contains("SENDERS"));
    }

    #[tokio::test]
    async fn a_malformed_inline_secret_is_named_without_its_value() {
        let pairs = vec![
            ("SENDERS", "none".to_owned()),
            ("SIGNING_KEYS", "{\"current\":\"hunter2\"}".to_owned()),
            ("OTP_PEPPER", "00112233445566778899aabbccddeeff".to_owned()),
        ];
        let e = start_error(&pairs).await;
        assert!(e.contains("SIGNING_KEYS") && !e.contains("hunter2"), "{e}");
    }
}
