//! The WhatsApp Cloud API sender: a code goes out as an approved
//! *authentication* template with a copy-code button —
//! `POST {base}/{version}/{phone-number-id}/messages` with a bearer token.
//!
//! Each attempt has a 3 s timeout; a 5xx answer, a timeout or a broken
//! connection is tried once more. A 4xx (a number that is not on WhatsApp,
//! a template that is not approved, a bad token) fails at once with the
//! Cloud API's error code and message. No error ever carries the token, and
//! the Cloud API's message is cleaned of the token and the destination
//! before it is kept.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nambari_core::base::channel::Pipe;
use nambari_core::base::config::Settings;
use nambari_core::ports::secrets::Live;
use nambari_core::ports::sender::{InviteMessage, OtpMessage, SendError, Sender};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tracing::{debug, instrument, warn};

/// How long one attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// Pause before the one retry.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The longest Cloud API error message kept.
const MAX_ERROR_MESSAGE: usize = 200;

/// Where and what to send.
#[derive(Clone, Debug)]
pub struct WhatsAppConfig {
    /// `https://graph.facebook.com` (no trailing slash).
    pub base_url: String,
    /// `v23.0`.
    pub api_version: String,
    pub phone_number_id: String,
    pub template_name: String,
    /// The template's languages (`en_US`, `fr`, …); the first is the default.
    pub template_languages: Vec<String>,
    /// The approved template of invites, one body parameter: the claim link.
    pub invite_template_name: String,
}

impl WhatsAppConfig {
    /// The configuration in the settings; `None` without
    /// `WHATSAPP_PHONE_NUMBER_ID`.
    pub fn from_settings(s: &Settings) -> Option<Self> {
        let d = &s.delivery;
        Some(Self {
            base_url: d.whatsapp_base_url.clone(),
            api_version: d.whatsapp_api_version.clone(),
            phone_number_id: d.whatsapp_phone_number_id.clone()?,
            template_name: d.whatsapp_template_name.clone(),
            template_languages: d.whatsapp_template_languages.clone(),
            invite_template_name: d.whatsapp_invite_template_name.clone(),
        })
    }

    /// The messages endpoint.
    pub fn url(&self) -> String {
        format!(
            "{}/{}/{}/messages",
            self.base_url.trim_end_matches('/'),
            self.api_version,
            self.phone_number_id
        )
    }

    /// The template language for a request's locale: the first configured
    /// language with the same primary subtag (`fr` → `fr`, `en` → `en_US`),
    /// else the first one.
    pub fn language_for(&self, locale: &str) -> &str {
        let primary = |s: &str| s.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        let wanted = primary(locale);
        self.template_languages
            .iter()
            .find(|l| primary(l) == wanted)
            .or(self.template_languages.first())
            .map(String::as_str)
            .unwrap_or("en_US")
    }
}

/// The sender could not be built.
#[derive(Debug, thiserror::Error)]
#[error("WhatsApp sender: {0}")]
pub struct BuildError(String);

/// Sends codes over the WhatsApp Cloud API.
pub struct WhatsAppSender {
    http: reqwest::Client,
    config: WhatsAppConfig,
    url: String,
    token: Arc<Live<SecretString>>,
    timeout: Duration,
}

impl std::fmt::Debug for WhatsAppSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppSender")
            .field("url", &self.url)
            .field("template", &self.config.template_name)
            .finish_non_exhaustive()
    }
}

/// What one attempt came to.
enum Attempt {
    Sent,
    /// Worth one more try (5xx, timeout, connection).
    Transient(String),
    /// Refused for good (4xx).
    Refused(String),
}

impl WhatsAppSender {
    /// `token`: the Cloud API access token, replaced in place when the
    /// secret is refreshed.
    pub fn new(config: WhatsAppConfig, token: Arc<Live<SecretString>>) -> Result<Self, BuildError> {
        Self::with_timeout(config, token, TIMEOUT)
    }

    /// As [`Self::new`] with another per-attempt timeout (tests).
    pub fn with_timeout(
        config: WhatsAppConfig,
        token: Arc<Live<SecretString>>,
        timeout: Duration,
    ) -> Result<Self, BuildError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| BuildError(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self {
            http,
            url: config.url(),
            config,
            token,
            timeout,
        })
    }

    /// The Cloud API request body for `msg`: the authentication template
    /// with the code as the body parameter and as the copy-code button's
    /// parameter.
    pub fn body(&self, msg: &OtpMessage) -> Value {
        let code = msg.code.expose();
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": msg.to.trim_start_matches('+'),
            "type": "template",
            "template": {
                "name": self.config.template_name,
                "language": {"code": self.config.language_for(&msg.locale)},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": code}]},
                    {
                        "type": "button",
                        "sub_type": "url",
                        "index": "0",
                        "parameters": [{"type": "text", "text": code}]
                    }
                ]
            }
        })
    }

    async fn attempt(&self, body: &Value, to: &str) -> Attempt {
        let token = self.token.get();
        let sent = self
            .http
            .post(&self.url)
            .bearer_auth(token.expose_secret())
            .json(body)
            .send()
            .await;
        let res = match sent {
            Ok(res) => res,
            Err(e) if e.is_timeout() => {
                return Attempt::Transient(format!("no answer within {} ms", self.timeout.as_millis()));
            }
            Err(e) if e.is_connect() => return Attempt::Transient("connection failed".into()),
            Err(_) => return Attempt::Transient("request failed".into()),
        };
        let status = res.status();
        if status.is_success() {
            if let Ok(v) = res.json::<Value>().await {
                debug!(
                    message_id = v["messages"][0]["id"].as_str().unwrap_or(""),
                    "WhatsApp message accepted"
                );
            }
            return Attempt::Sent;
        }
        // The Cloud API's error object; never the raw body, which could echo the request.
        let api_error = match res.bytes().await {
            Ok(b) => describe_api_error(&b, token.expose_secret(), to),
            Err(_) => String::new(),
        };
        let reason = format!("HTTP {}{api_error}", status.as_u16());
        if status.is_server_error() {
            Attempt::Transient(reason)
        } else {
            Attempt::Refused(reason)
        }
    }
}

/// `, error <code>: <message>` from a Cloud API error body
/// (`{"error":{"message","code",…}}`), cleaned of `token` and `to`; empty
/// when the body is not one.
fn describe_api_error(body: &[u8], token: &str, to: &str) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let e = &v["error"];
    let code = e["code"].as_i64();
    let message = e["message"].as_str().map(|m| {
        let mut m: String = m.chars().filter(|c| !c.is_control()).take(MAX_ERROR_MESSAGE).collect();
        if !token.is_empty() {
            m = m.replace(token, "***");
        }
        for number in [to, to.trim_start_matches('+')] {
            if number.len() > 4 {
                m = m.replace(number, "***");
            }
        }
        m
    });
    match (code, message) {
        (Some(c), Some(m)) => format!(", error {c}: {m}"),
        (Some(c), None) => format!(", error {c}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

impl WhatsAppSender {
    /// The Cloud API request body of an invite: the invite template with
    /// the claim link as its body parameter.
    pub fn invite_body(&self, msg: &InviteMessage) -> Value {
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": msg.to.trim_start_matches('+'),
            "type": "template",
            "template": {
                "name": self.config.invite_template_name,
                "language": {"code": self.config.language_for(&msg.locale)},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": msg.link}]}
                ]
            }
        })
    }

    /// One attempt, and one more after a transient failure.
    async fn post(&self, body: &Value, to: &str) -> Result<(), SendError> {
        let refused = |reason: String| SendError {
            pipe: Pipe::Whatsapp,
            reason: format!("WhatsApp Cloud API: {reason}"),
        };
        match self.attempt(body, to).await {
            Attempt::Sent => return Ok(()),
            Attempt::Refused(reason) => return Err(refused(reason)),
            Attempt::Transient(reason) => warn!(reason, "WhatsApp send failed; trying once more"),
        }
        tokio::time::sleep(RETRY_PAUSE).await;
        match self.attempt(body, to).await {
            Attempt::Sent => Ok(()),
            Attempt::Refused(reason) => Err(refused(reason)),
            Attempt::Transient(reason) => Err(refused(format!("{reason} (after one retry)"))),
        }
    }
}

#[async_trait]
impl Sender for WhatsAppSender {
    #[instrument(skip_all, fields(to = %msg.masked_to()))]
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        self.post(&self.body(msg), &msg.to).await
    }

    #[instrument(skip_all)]
    async fn send_invite(&self, msg: &InviteMessage) -> Result<(), SendError> {
        self.post(&self.invite_body(msg), &msg.to).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use nambari_core::base::otp::OtpCode;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const TOKEN: &str = "EAAJtest-token-0123456789";
    const TO: &str = "+255745051250";

    fn config(base: &str) -> WhatsAppConfig {
        WhatsAppConfig {
            base_url: base.to_owned(),
            api_version: "v23.0".into(),
            phone_number_id: "106540352242922".into(),
            template_name: "nambari_otp".into(),
            template_languages: vec!["en_US".into(), "fr".into()],
            invite_template_name: "nambari_invite".into(),
        }
    }

    fn sender(server: &MockServer, timeout: Duration) -> WhatsAppSender {
        let token = Arc::new(Live::new(SecretString::from(TOKEN)));
        WhatsAppSender::with_timeout(config(&server.uri()), token, timeout).unwrap()
    }

    fn message(locale: &str) -> OtpMessage {
        OtpMessage {
            pipe: Pipe::Whatsapp,
            to: TO.into(),
            code: OtpCode::fixed("493027"),
            locale: locale.into(),
            purpose: "auth",
            ttl: None,
        }
    }

    fn messages_path() -> wiremock::matchers::PathExactMatcher {
        path("/v23.0/106540352242922/messages")
    }

    fn accepted() -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "255745051250", "wa_id": "255745051250"}],
            "messages": [{"id": "wamid.HBgLMjU1NzQ1MDUxMjUwFQIAERgSQ0E="}]
        }))
    }

    #[tokio::test]
    async fn the_request_is_an_authentication_template_with_a_copy_code_button() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(messages_path())
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "255745051250",
                "type": "template",
                "template": {
                    "name": "nambari_otp",
                    "language": {"code": "fr"},
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": "493027"}]},
                        {"type": "button", "sub_type": "url", "index": "0",
                         "parameters": [{"type": "text", "text": "493027"}]}
                    ]
                }
            })))
            .respond_with(accepted())
            .expect(1)
            .mount(&server)
            .await;
        sender(&server, TIMEOUT).send(&message("fr")).await.unwrap();
    }

    #[tokio::test]
    async fn a_server_error_is_retried_once() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(accepted())
            .expect(1)
            .mount(&server)
            .await;
        sender(&server, TIMEOUT).send(&message("en")).await.unwrap();
    }

    #[tokio::test]
    async fn two_server_errors_fail_after_exactly_one_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .expect(2)
            .mount(&server)
            .await;
        let e = sender(&server, TIMEOUT).send(&message("en")).await.unwrap_err();
        assert!(
            e.reason.contains("HTTP 503") && e.reason.contains("after one retry"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_timeout_is_retried_once() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(accepted().set_delay(Duration::from_millis(1_500)))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(accepted())
            .expect(1)
            .mount(&server)
            .await;
        sender(&server, Duration::from_millis(300))
            .send(&message("en"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_client_error_fails_at_once_with_the_api_error_and_without_the_token() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": format!("(#131030) Recipient phone number {TO} not in allowed list; token {TOKEN}"),
                "type": "OAuthException",
                "code": 131030,
                "fbtrace_id": "AbCdEf"
            }})))
            .expect(1)
            .mount(&server)
            .await;
        let e = sender(&server, TIMEOUT).send(&message("en")).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains("HTTP 400, error 131030"), "{text}");
        assert!(text.contains("not in allowed list"), "{text}");
        assert!(!text.contains(TOKEN) && !text.contains("255745051250"), "{text}");
        assert_eq!(e.pipe, Pipe::Whatsapp);
    }

    #[tokio::test]
    async fn a_refreshed_token_is_used_from_the_next_message_on() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(header("authorization", "Bearer rotated-token"))
            .respond_with(accepted())
            .expect(1)
            .mount(&server)
            .await;
        let token = Arc::new(Live::new(SecretString::from(TOKEN)));
        let s = WhatsAppSender::new(config(&server.uri()), token.clone()).unwrap();
        token.set(SecretString::from("rotated-token"));
        s.send(&message("en")).await.unwrap();
    }

    #[test]
    fn the_template_language_follows_the_locale_and_falls_back_to_the_first() {
        let c = config("http://x");
        assert_eq!(c.language_for("fr"), "fr");
        assert_eq!(c.language_for("en"), "en_US");
        assert_eq!(c.language_for("sw"), "en_US");
        assert_eq!(c.url(), "http://x/v23.0/106540352242922/messages");
    }
}
