//! Real delivery through local mode: SMS over SNS and email over SES on
//! moto (read back from `/moto-api/data.json`), WhatsApp over the Cloud API
//! against a wiremock server, and the fallbacks of SMS_AND_WHATSAPP.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nambari_aws::{SesEmailSender, SnsSmsSender};
use nambari_core::base::config::Settings;
use nambari_core::model::keys::user_key;
use nambari_core::model::table::Update;
use nambari_core::ports::secrets::Live;
use nambari_core::ports::sender::{MultiSender, OtpMessage, SendError, Sender};
use nambari_core::testing;
use nambari_tests::moto;
use nambari_tests::server::{Reply, Server, Store};
use nambari_whatsapp::{WhatsAppConfig, WhatsAppSender};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DOMAIN: &str = "nambari.example";
const FROM: &str = "Nambari <no-reply@nambari.example>";
const TOKEN: &str = "EAAJ-whatsapp-test-token-7f3a9c";
const PHONE_NUMBER_ID: &str = "106540352242922";

/// A Tanzanian mobile number no other test uses (moto's record is shared).
fn fresh_phone() -> String {
    let n = getrandom::u32().unwrap() % 10_000_000;
    format!("+25574{n:07}")
}

fn settings() -> Settings {
    let mut s = testing::settings();
    s.delivery.webotp_domain = Some(DOMAIN.into());
    s.delivery.ses_from_address = Some(FROM.into());
    s.delivery.whatsapp_phone_number_id = Some(PHONE_NUMBER_ID.into());
    s
}

async fn sns(endpoint: &str) -> Arc<dyn Sender> {
    Arc::new(SnsSmsSender::from_settings(&settings(), Some(endpoint)).await)
}

async fn ses() -> Arc<dyn Sender> {
    let moto = moto::shared();
    // moto, like SES, only sends from a verified identity.
    let client = aws_sdk_sesv2::Client::new(&nambari_aws::sdk_config(Some(&moto.endpoint)).await);
    client
        .create_email_identity()
        .email_identity(DOMAIN)
        .send()
        .await
        .expect("verifying the sending domain on moto");
    Arc::new(
        SesEmailSender::from_settings(&settings(), Some(&moto.endpoint))
            .await
            .unwrap(),
    )
}

fn whatsapp(server: &MockServer) -> Arc<dyn Sender> {
    let mut s = settings();
    s.delivery.whatsapp_base_url = server.uri();
    let config = WhatsAppConfig::from_settings(&s).unwrap();
    let token = Arc::new(Live::new(SecretString::from(TOKEN)));
    Arc::new(WhatsAppSender::new(config, token).unwrap())
}

/// The SMS moto recorded for `phone`, oldest first.
async fn sms_to(phone: &str) -> Vec<String> {
    let data = moto::sent_messages(moto::shared()).await;
    data["sns"]["SMS"]
        .as_array()
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|m| m["phone_number"] == phone)
        .map(|m| m["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The emails moto recorded for `address`.
async fn emails_to(address: &str) -> Vec<Value> {
    let data = moto::sent_messages(moto::shared()).await;
    data["ses"]["Message"]
        .as_array()
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t == address))
        })
        .cloned()
        .collect()
}

async fn check(s: &Server, phone: &str) -> String {
    let r = s
        .post("/auth/check", json!({"identifier": phone, "deviceId": "dev-1"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.data_str("checkToken")
}

async fn start(s: &Server, check_token: &str, channel: &str) -> Reply {
    s.post(
        "/auth/passwordless-start",
        json!({"checkToken": check_token, "channel": channel, "deviceId": "dev-1"}),
    )
    .await
}

async fn verify(s: &Server, start: &Reply, code: &str) -> Reply {
    let r = s
        .post(
            "/auth/verify-otp",
            json!({"tempToken": start.data_str("tempToken"), "otp": code, "platform": "ANDROID"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

/// Signs `phone` up over SMS and returns the new user's id.
async fn sign_up(s: &Server, phone: &str) -> nambari_core::base::ids::UserId {
    let ct = check(s, phone).await;
    let st = start(s, &ct, "SMS").await;
    assert_eq!(st.status, 200, "{}", st.body);
    let v = verify(s, &st, &st.data_str("sandboxOtp")).await;
    let p = s
        .post(
            "/auth/onboarding/primary",
            json!({"onboardingToken": v.data_str("onboardingToken"), "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    s.app
        .db
        .user_by_phone(phone, s.app.now())
        .await
        .unwrap()
        .expect("the user exists")
        .id
}

/// Gives the user a verified email, as the email flow would.
async fn verify_email(s: &Server, user: &nambari_core::base::ids::UserId, address: &str) {
    s.app
        .db
        .update(
            &user_key(user),
            vec![Update::set("email", address), Update::set("email_verified", true)],
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_sms_sign_in_publishes_one_sms_with_the_code_and_the_webotp_line() {
    let phone = fresh_phone();
    let sender = MultiSender {
        sms: Some(sns(&moto::shared().endpoint).await),
        ..MultiSender::default()
    };
    let s = Server::start_with_sender(Store::Memory, settings(), Arc::new(sender)).await;
    let ct = check(&s, &phone).await;
    let st = start(&s, &ct, "SMS").await;
    assert_eq!(st.status, 200, "{}", st.body);
    assert_eq!(st.body["data"]["deliveredVia"], json!(["SMS"]));
    let code = st.data_str("sandboxOtp");

    let sent = sms_to(&phone).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains(&format!("Your Nambari code is {code}.")),
        "{}",
        sent[0]
    );
    assert!(sent[0].ends_with(&format!("\n@{DOMAIN} #{code}")), "{}", sent[0]);

    let v = verify(&s, &st, &code).await;
    assert_eq!(v.action(), "COLLECT_PRIMARY");
}

#[tokio::test]
async fn an_sms_follows_the_accept_language_of_the_request() {
    let phone = fresh_phone();
    let sender = MultiSender {
        sms: Some(sns(&moto::shared().endpoint).await),
        ..MultiSender::default()
    };
    let s = Server::start_with_sender(Store::Memory, settings(), Arc::new(sender)).await;
    let ct = check(&s, &phone).await;
    let body = json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-1"}).to_string();
    let st = s
        .request(
            "POST",
            "/api/v1/auth/passwordless-start",
            Some(body),
            &[("accept-language", "sw-TZ,sw;q=0.9,en;q=0.5")],
        )
        .await;
    assert_eq!(st.status, 200, "{}", st.body);
    let sent = sms_to(&phone).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].starts_with("Msimbo wako wa Nambari ni "), "{}", sent[0]);
}

#[tokio::test]
async fn an_email_sign_in_sends_one_email_to_the_verified_address() {
    let phone = fresh_phone();
    let address = format!("asha.{}@example.com", &phone[1..]);
    let sender = MultiSender {
        sms: Some(sns(&moto::shared().endpoint).await),
        email: Some(ses().await),
        ..MultiSender::default()
    };
    let s = Server::start_with_sender(Store::Dynamo, settings(), Arc::new(sender)).await;
    let user = sign_up(&s, &phone).await;

    // No verified email yet: EMAIL is neither offered nor accepted.
    let ct = check(&s, &phone).await;
    let ch = s
        .post(
            "/auth/passwordless/channels",
            json!({"checkToken": ct, "deviceId": "dev-1"}),
        )
        .await;
    assert!(
        !ch.body["data"]["channels"].to_string().contains("EMAIL"),
        "{}",
        ch.body
    );
    let st = start(&s, &ct, "EMAIL").await;
    assert_eq!((st.status, st.code()), (400, "NO_VERIFIED_EMAIL"), "{}", st.body);

    verify_email(&s, &user, &address).await;
    let ct = check(&s, &phone).await;
    let ch = s
        .post(
            "/auth/passwordless/channels",
            json!({"checkToken": ct, "deviceId": "dev-1"}),
        )
        .await;
    let email_option = ch.body["data"]["channels"]
        .as_array()
        .and_then(|v| v.iter().find(|c| c["channel"] == "EMAIL").cloned());
    assert_eq!(
        email_option.map(|c| c["masked"].clone()),
        Some(json!(nambari_core::base::mask::mask_email(&address))),
        "{}",
        ch.body
    );

    let st = start(&s, &ct, "EMAIL").await;
    assert_eq!(st.status, 200, "{}", st.body);
    let code = st.data_str("sandboxOtp");
    let sent = emails_to(&address).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["source"], FROM);
    assert_eq!(sent[0]["subject"], "Your Nambari code");
    assert!(sent[0]["body"].as_str().unwrap().contains(&code), "{}", sent[0]);

    let v = verify(&s, &st, &code).await;
    assert!(v.body["data"]["accessToken"].is_string(), "{}", v.body);
}

#[tokio::test]
async fn a_whatsapp_sign_in_posts_the_authentication_template_with_the_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messages": [{"id": "wamid.1"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let sender = MultiSender {
        whatsapp: Some(whatsapp(&server)),
        ..MultiSender::default()
    };
    let s = Server::start_with_sender(Store::Memory, settings(), Arc::new(sender)).await;
    let phone = fresh_phone();
    let st = start(&s, &check(&s, &phone).await, "WHATSAPP").await;
    assert_eq!(st.status, 200, "{}", st.body);
    let code = st.data_str("sandboxOtp");

    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], phone.trim_start_matches('+'));
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "nambari_otp");
    assert_eq!(body["template"]["language"]["code"], "en_US");
    let components = &body["template"]["components"];
    assert_eq!(components[0]["type"], "body");
    assert_eq!(components[0]["parameters"][0]["text"], code.as_str());
    assert_eq!(components[1]["type"], "button");
    assert_eq!(components[1]["sub_type"], "url");
    assert_eq!(components[1]["index"], "0");
    assert_eq!(components[1]["parameters"][0]["text"], code.as_str());

    verify(&s, &st, &code).await;
}

#[tokio::test]
async fn a_whatsapp_server_error_then_success_delivers_after_one_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messages": [{"id": "wamid.2"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let sender = MultiSender {
        whatsapp: Some(whatsapp(&server)),
        ..MultiSender::default()
    };
    let s = Server::start_with_sender(Store::Memory, settings(), Arc::new(sender)).await;
    let st = start(&s, &check(&s, &fresh_phone()).await, "WHATSAPP").await;
    assert_eq!(st.status, 200, "{}", st.body);
    assert_eq!(st.body["data"]["deliveredVia"], json!(["WHATSAPP"]));
}

/// Log lines written while a [`Capture`] is in force (this thread only,
/// which with the default current-thread test runtime is every task).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_refused_whatsapp_message_is_delivery_failed_without_the_token_in_the_response_or_the_logs() {
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .without_time()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            // An error that quotes what it was sent: none of it may survive.
            "message": format!("(#132001) Template name does not exist in the translation; sent with {TOKEN}"),
            "type": "OAuthException",
            "code": 132001,
            "fbtrace_id": "A1b2C3"
        }})))
        .expect(1)
        .mount(&server)
        .await;
    let sender = MultiSender {
        sms: Some(sns(&moto::shared().endpoint).await),
        whatsapp: Some(whatsapp(&server)),
        ..MultiSender::default()
    };
    let s = Server::start_with_sender(Store::Memory, settings(), Arc::new(sender)).await;
    let phone = fresh_phone();
    let ct = check(&s, &phone).await;
    let st = start(&s, &ct, "WHATSAPP").await;
    assert_eq!((st.status, st.code()), (502, "DELIVERY_FAILED"), "{}", st.body);
    assert!(!st.body.to_string().contains(TOKEN));
    assert!(
        !st.body.to_string().contains("132001"),
        "the cause is not returned: {}",
        st.body
    );

    let text = logs.text();
    assert!(text.contains("HTTP 400, error 132001"), "the refusal is logged: {text}");
    assert!(!text.contains(TOKEN), "the token leaked into the logs: {text}");
    assert!(!text.contains(&phone[1..]), "the phone number leaked into the logs");

    // The checkToken is still usable with another channel; the SMS text
    // (and so the code) stays out of the logs, SDK traces included.
    let st = start(&s, &ct, "SMS").await;
    assert_eq!(st.status, 200, "{}", st.body);
    let code = st.data_str("sandboxOtp");
    let text = logs.text();
    assert!(text.contains("SMS published"), "the SNS send is logged: {text}");
    assert!(
        !text.contains(&format!("#{code}")) && !text.contains(&format!("is {code}")),
        "{text}"
    );
}

#[tokio::test]
async fn sms_and_whatsapp_with_whatsapp_down_still_signs_the_user_in_by_sms() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let sender = MultiSender {
        sms: Some(sns(&moto::shared().endpoint).await),
        whatsapp: Some(whatsapp(&server)),
        ..MultiSender::default()
    };
    let s = Server::start_with_sender(Store::Memory, settings(), Arc::new(sender)).await;
    let phone = fresh_phone();
    sign_up(&s, &phone).await;

    let st = start(&s, &check(&s, &phone).await, "SMS_AND_WHATSAPP").await;
    assert_eq!(st.status, 200, "{}", st.body);
    assert_eq!(st.body["data"]["deliveredVia"], json!(["SMS"]));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "one retry, then given up"
    );
    let code = st.data_str("sandboxOtp");
    let sent = sms_to(&phone).await;
    assert_eq!(sent.len(), 2, "sign-up and sign-in: {sent:?}");
    assert!(sent[1].ends_with(&format!("#{code}")));

    let v = verify(&s, &st, &code).await;
    assert!(v.body["data"]["accessToken"].is_string(), "{}", v.body);
}

/// A sender that can be switched off: then it fails like an unreachable SNS.
struct Switch {
    on: Arc<dyn Sender>,
    off: Arc<dyn Sender>,
    down: AtomicBool,
}

#[async_trait::async_trait]
impl Sender for Switch {
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        if self.down.load(Ordering::SeqCst) {
            self.off.send(msg).await
        } else {
            self.on.send(msg).await
        }
    }
}

#[tokio::test]
async fn with_every_channel_down_the_start_is_502_and_the_same_check_token_works_with_another_channel() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    // SNS on a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let sms = Arc::new(Switch {
        on: sns(&moto::shared().endpoint).await,
        off: sns(&dead_endpoint).await,
        down: AtomicBool::new(false),
    });
    let sender = MultiSender {
        sms: Some(sms.clone()),
        whatsapp: Some(whatsapp(&server)),
        email: Some(ses().await),
    };
    let s = Server::start_with_sender(Store::Memory, settings(), Arc::new(sender)).await;
    let phone = fresh_phone();
    let address = format!("asha.{}@example.com", &phone[1..]);
    let user = sign_up(&s, &phone).await;
    verify_email(&s, &user, &address).await;
    sms.down.store(true, Ordering::SeqCst);

    let ct = check(&s, &phone).await;
    let st = start(&s, &ct, "SMS_AND_WHATSAPP").await;
    assert_eq!((st.status, st.code()), (502, "DELIVERY_FAILED"), "{}", st.body);
    assert_eq!(sms_to(&phone).await.len(), 1, "only the sign-up SMS went out");

    let st = start(&s, &ct, "EMAIL").await;
    assert_eq!(st.status, 200, "{}", st.body);
    let code = st.data_str("sandboxOtp");
    assert_eq!(emails_to(&address).await.len(), 1);
    let v = verify(&s, &st, &code).await;
    assert!(v.body["data"]["accessToken"].is_string(), "{}", v.body);
}

#[tokio::test]
async fn a_whatsapp_timeout_counts_as_down() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let mut s = settings();
    s.delivery.whatsapp_base_url = server.uri();
    let token = Arc::new(Live::new(SecretString::from(TOKEN)));
    let sender = WhatsAppSender::with_timeout(
        WhatsAppConfig::from_settings(&s).unwrap(),
        token,
        Duration::from_millis(200),
    )
    .unwrap();
    let message = OtpMessage {
        pipe: nambari_core::base::channel::Pipe::Whatsapp,
        to: fresh_phone(),
        code: nambari_core::base::otp::OtpCode::fixed("123456"),
        locale: "en".into(),
        purpose: "auth",
        ttl: None,
    };
    let e = sender.send(&message).await.unwrap_err();
    assert!(e.reason.contains("no answer within 200 ms (after one retry)"), "{e}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_repeated_idempotency_key_publishes_exactly_one_sms_on_moto() {
    // As deployed (no sandbox), SMS over SNS on moto: a mobile client that
    // retries passwordless-start with the same key sends one SMS.
    let phone = fresh_phone();
    let sender = MultiSender {
        sms: Some(sns(&moto::shared().endpoint).await),
        ..MultiSender::default()
    };
    let mut s_settings = settings();
    s_settings.sandbox = false;
    let s = Server::start_with_sender(Store::Dynamo, s_settings, Arc::new(sender)).await;
    let ct = check(&s, &phone).await;
    let body = json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-1"}).to_string();
    let headers = [("idempotency-key", "retry-7f3a")];
    let first = s
        .request("POST", "/api/v1/auth/passwordless-start", Some(body.clone()), &headers)
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = s
        .request("POST", "/api/v1/auth/passwordless-start", Some(body), &headers)
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, first.body, "the same answer");
    assert_eq!(sms_to(&phone).await.len(), 1, "one SMS in moto's record");
}
