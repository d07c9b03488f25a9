//! Secrets from Secrets Manager (moto) at cold start, their refresh, and
//! signing-key rotation.

use std::collections::HashMap;
use std::sync::Arc;

use nambari_core::App;
use nambari_core::base::otp::{OtpCode, Pepper};
use nambari_core::base::tokens::{KeyRing, KeySet, TokenKind};
use nambari_core::ports::clock::{Clock, FixedClock};
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::secrets::{REFRESH_INTERVAL, Refresh};
use nambari_core::ports::sender::RecordingSender;
use nambari_core::testing;
use nambari_http::config::{Started, StartupError, start_from_lookup};
use nambari_tests::moto;
use nambari_tests::server::Server;
use serde_json::{Value, json};
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PEPPER: &str = "5f0c2a7d9e31b4c86a1d0e2f3b4c5d6e";
const API_KEY_PEPPER: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4";
const TOKEN: &str = "EAAJ-from-secrets-manager-5c1e";

fn unique(name: &str) -> String {
    format!(
        "nambari/test/{}-{:08x}/{name}",
        std::process::id(),
        getrandom::u32().unwrap()
    )
}

async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&nambari_aws::sdk_config(Some(&moto::shared().endpoint)).await)
}

/// Creates a secret on moto; its ARN.
async fn create(name: &str, value: &str) -> String {
    let out = secrets_client()
        .await
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating secret {name}: {e:?}"));
    out.arn().unwrap().to_owned()
}

async fn put(id: &str, value: &str) {
    secrets_client()
        .await
        .put_secret_value()
        .secret_id(id)
        .secret_string(value)
        .send()
        .await
        .unwrap();
}

fn json_of(set: &KeySet) -> String {
    serde_json::to_string(set).unwrap()
}

/// A Lambda environment on moto: secrets in Secrets Manager, a fresh table,
/// SNS and SES on moto, WhatsApp on `whatsapp_base`.
struct Env {
    vars: HashMap<&'static str, String>,
    keys: KeySet,
    keys_arn: String,
    table: Arc<nambari_aws::DynamoTable>,
}

impl Env {
    async fn new(whatsapp_base: &str) -> Env {
        let moto = moto::shared();
        let keys = KeyRing::generate_set().unwrap();
        let keys_arn = create(&unique("signing-keys"), &json_of(&keys)).await;
        let pepper_name = unique("otp-pepper");
        create(&pepper_name, PEPPER).await;
        let api_pepper_name = unique("api-key-pepper");
        create(&api_pepper_name, API_KEY_PEPPER).await;
        let token_name = unique("whatsapp-token");
        create(&token_name, TOKEN).await;
        let table = Arc::new(moto::fresh_table(moto).await);
        let vars = HashMap::from([
            ("STAGE", "test".to_owned()),
            ("SANDBOX", "true".to_owned()),
            ("TABLE_NAME", table.table_name().to_owned()),
            ("DYNAMODB_ENDPOINT", moto.endpoint.clone()),
            ("SECRETS_ENDPOINT", moto.endpoint.clone()),
            ("SNS_ENDPOINT", moto.endpoint.clone()),
            ("SES_ENDPOINT", moto.endpoint.clone()),
            ("SIGNING_KEYS_SECRET_ARN", keys_arn.clone()),
            ("OTP_PEPPER_SECRET_ARN", pepper_name),
            ("API_KEY_PEPPER_SECRET_ARN", api_pepper_name),
            ("WHATSAPP_TOKEN_SECRET_ARN", token_name),
            ("WEBOTP_DOMAIN", "nambari.example".to_owned()),
            ("SES_FROM_ADDRESS", "no-reply@nambari.example".to_owned()),
            ("WHATSAPP_BASE_URL", whatsapp_base.to_owned()),
            ("WHATSAPP_PHONE_NUMBER_ID", "106540352242922".to_owned()),
        ]);
        Env {
            vars,
            keys,
            keys_arn,
            table,
        }
    }

    async fn start(&self, clock: Arc<dyn Clock>) -> Result<Started, StartupError> {
        let vars = self.vars.clone();
        start_from_lookup(
            nambari_core::app::Needs::ALL,
            move |k: &str| vars.get(k).cloned(),
            clock,
        )
        .await
    }
}

fn kids(app: &App) -> Vec<String> {
    app.keys().unwrap().jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn secrets_are_read_from_secrets_manager_at_start_up() {
    let whatsapp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messages": [{"id": "wamid.3"}]})))
        .expect(1)
        .mount(&whatsapp)
        .await;
    let env = Env::new(&whatsapp.uri()).await;
    let started = env
        .start(Arc::new(nambari_core::ports::clock::SystemClock))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(started.refresher.is_some(), "Secrets Manager secrets are refreshed");
    let app = started.app;

    // The signing keys, both peppers and the token are the stored ones.
    assert_eq!(kids(&app), vec![env.keys.current.kid.clone()]);
    let code = OtpCode::fixed("123456");
    let pepper = Pepper::new(hex_decode(PEPPER)).unwrap();
    assert_eq!(app.pepper().unwrap().hash("s1", &code), pepper.hash("s1", &code));
    let api = app.api_key_pepper().expect("the API-key pepper is loaded");
    assert_eq!(
        api.hash("s1", &code),
        Pepper::new(hex_decode(API_KEY_PEPPER)).unwrap().hash("s1", &code)
    );

    // The App works end to end on moto: a WhatsApp send carries the token
    // from Secrets Manager (the mock only answers that bearer).
    let s = Server::start_app(Arc::new(app), env.table.clone()).await;
    let phone = "+255745051250";
    let ct = s
        .post("/auth/check", json!({"identifier": phone, "deviceId": "dev-1"}))
        .await
        .data_str("checkToken");
    let st = s
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "WHATSAPP", "deviceId": "dev-1"}),
        )
        .await;
    assert_eq!(st.status, 200, "{}", st.body);
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn a_missing_secret_fails_start_up_naming_it() {
    let mut env = Env::new("http://127.0.0.1:9").await;
    let missing = unique("never-created");
    env.vars.insert("OTP_PEPPER_SECRET_ARN", missing.clone());
    let e = env
        .start(Arc::new(nambari_core::ports::clock::SystemClock))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("OTP_PEPPER_SECRET_ARN") && e.contains(&missing) && e.contains("missing"),
        "{e}"
    );
}

#[tokio::test]
async fn a_malformed_secret_fails_start_up_naming_it_without_its_value() {
    let env = Env::new("http://127.0.0.1:9").await;
    put(
        &env.keys_arn,
        "{\"current\":{\"kid\":\"k1\",\"pem\":\"not-a-key-hunter2\"}}",
    )
    .await;
    let e = env
        .start(Arc::new(nambari_core::ports::clock::SystemClock))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("SIGNING_KEYS_SECRET_ARN") && e.contains(&env.keys_arn),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
}

#[tokio::test]
async fn a_rotated_signing_key_is_picked_up_after_five_minutes_and_earlier_tokens_stay_valid() {
    let env = Env::new("http://127.0.0.1:9").await;
    let clock = Arc::new(FixedClock::at_secs(testing::T0));
    let started = env.start(clock.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    let (app, refresher) = (started.app, started.refresher.unwrap());
    let now = clock.now_secs();
    let (old_token, _) = app
        .keys()
        .unwrap()
        .issue(TokenKind::Access, "usr_0000000000000000000001", json!({}), now)
        .unwrap();

    let rotated = KeyRing::rotate_set(&env.keys).unwrap();
    put(&env.keys_arn, &json_of(&rotated)).await;
    assert_eq!(refresher.refresh_if_due().await, Refresh::NotDue, "never per request");
    clock.advance(REFRESH_INTERVAL - 1);
    assert_eq!(refresher.refresh_if_due().await, Refresh::NotDue);
    assert_eq!(kids(&app), vec![env.keys.current.kid.clone()]);

    clock.advance(1);
    assert_eq!(refresher.refresh_if_due().await, Refresh::Refreshed);
    assert_eq!(kids(&app), [rotated.current.kid.clone(), env.keys.current.kid.clone()]);
    let now = clock.now_secs();
    assert!(
        app.keys()
            .unwrap()
            .verify::<Value>(TokenKind::Access, &old_token, now)
            .is_ok()
    );
    let (new_token, _) = app
        .keys()
        .unwrap()
        .issue(TokenKind::Access, "usr_0000000000000000000001", json!({}), now)
        .unwrap();
    let header = jsonwebtoken::decode_header(&new_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(rotated.current.kid.as_str()));
}

fn app_with_keys(set: &KeySet) -> App {
    let settings = testing::settings();
    let keys = KeyRing::from_set(set, &settings.issuer, &settings.audience).unwrap();
    App::new(
        settings,
        Arc::new(MemoryTable::new()),
        Arc::new(FixedClock::at_secs(testing::T0)),
        Arc::new(keys),
        Pepper::new(vec![7; 32]).unwrap(),
        Arc::new(RecordingSender::default()),
    )
}

#[tokio::test]
async fn rotating_the_signing_key_keeps_earlier_access_tokens_valid_until_they_expire() {
    let first = KeyRing::generate_set().unwrap();
    let before = app_with_keys(&first);
    let now = before.now();
    let (token, claims) = before
        .keys()
        .unwrap()
        .issue(
            TokenKind::Access,
            "usr_0000000000000000000001",
            json!({"sid": "ses_1"}),
            now,
        )
        .unwrap();

    // New current key, the old one kept as previous.
    let second = KeyRing::rotate_set(&first).unwrap();
    let after = app_with_keys(&second);
    let verified = after
        .keys()
        .unwrap()
        .verify::<Value>(TokenKind::Access, &token, now + 60)
        .unwrap();
    assert_eq!(verified.jti, claims.jti);
    assert!(
        after
            .keys()
            .unwrap()
            .verify::<Value>(TokenKind::Access, &token, claims.exp)
            .is_err(),
        "until it expires"
    );
    assert_eq!(after.keys().unwrap().jwks()["keys"].as_array().unwrap().len(), 2);

    // A second rotation drops the first key: its tokens are no longer accepted.
    let third = KeyRing::rotate_set(&second).unwrap();
    let later = app_with_keys(&third);
    assert!(
        later
            .keys()
            .unwrap()
            .verify::<Value>(TokenKind::Access, &token, now + 60)
            .is_err()
    );
}

#[tokio::test]
async fn an_unreachable_secrets_manager_fails_start_up_with_a_clear_message_not_a_panic() {
    // Nobody listens on port 9: the cold start must fail (the function never
    // takes a request), naming the secret and the failure, not its value.
    let mut env = Env::new("http://127.0.0.1:9").await;
    env.vars.insert("SECRETS_ENDPOINT", "http://127.0.0.1:9".to_owned());
    let started = std::time::Instant::now();
    let e = env
        .start(Arc::new(nambari_core::ports::clock::SystemClock))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("SIGNING_KEYS_SECRET_ARN"), "names the secret: {e}");
    assert!(e.contains("unreachable") || e.contains("timed out"), "says why: {e}");
    assert!(!e.contains("BEGIN PRIVATE KEY") && !e.contains(PEPPER), "{e}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "fails fast: {:?}",
        started.elapsed()
    );
}
