//! `handle` driven by the API Gateway v2 events in `events/auth-passwordless-channels/`.

use lambda_http::Request;
use lambda_http::http::HeaderMap;
use nambari_core::auth::{self, StartInput};
use nambari_core::ids::UserId;
use nambari_core::repo::{Db, User};
use nambari_core::testing::{self, TestApp};
use serde_json::{Value, json};

use super::handle;

const TZ_PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";

/// The event `events/auth-passwordless-channels/<name>.json` with `{{key}}` placeholders filled in.
fn event(name: &str, vars: &[(&str, &str)]) -> Request {
    let path = format!(
        "{}/../../events/auth-passwordless-channels/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (key, value) in vars {
        json = json.replace(&format!("{{{{{key}}}}}"), value);
    }
    assert!(!json.contains("{{"), "{name}: a placeholder was left unfilled");
    lambda_http::request::from_str(&json).unwrap_or_else(|e| panic!("{name} is not an API Gateway v2 event: {e}"))
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

async fn send(t: &TestApp, req: Request) -> Reply {
    let res = handle(t.app.clone(), req).await;
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: serde_json::from_slice(res.body().as_ref()).expect("a JSON body"),
    }
}

fn assert_action_time(body: &Value) {
    let t = body["action_time"].as_str().expect("action_time");
    let shape: String = t.chars().map(|c| if c.is_ascii_digit() { 'D' } else { c }).collect();
    assert_eq!(shape, "DDDD-DD-DDTDD:DD:DD", "action_time {t}");
}

fn assert_json_headers(r: &Reply) {
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["cache-control"], "no-store");
}

/// A 200 envelope with `action`; its `data`.
fn success<'a>(r: &'a Reply, action: Option<&str>) -> &'a Value {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["httpStatus"], "OK");
    assert_eq!(r.body["action"], json!(action));
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_action_time(&r.body);
    assert_json_headers(r);
    &r.body["data"]
}

/// An error envelope with `status`, `httpStatus` and `code`.
fn failure(r: &Reply, status: u16, http_status: &str, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["success"], false);
    assert_eq!(r.body["httpStatus"], http_status);
    assert_eq!(r.body["code"], code);
    assert_action_time(&r.body);
    assert_json_headers(r);
    if status != 422 {
        assert_eq!(r.body["data"], r.body["message"]);
    }
}

/// The field names of a 422's field map.
fn fields(r: &Reply) -> Vec<&str> {
    r.body["data"]
        .as_object()
        .expect("a field map")
        .keys()
        .map(String::as_str)
        .collect()
}

/// A stored user with this phone, shaped by `edit`.
async fn seed_user(t: &TestApp, phone: &str, edit: impl FnOnce(&mut User)) -> User {
    let now = t.app.now();
    let mut user = User::new(UserId::generate().unwrap(), phone, "TZ", now);
    edit(&mut user);
    t.app
        .db
        .transact(Db::create_user_writes(&user, now).unwrap())
        .await
        .unwrap();
    user
}

/// A checkToken for `phone` on [`DEVICE`].
async fn check_token(t: &TestApp, phone: &str) -> String {
    auth::check(&t.app, Some(phone), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token
}

#[tokio::test]
async fn new_user_is_offered_sms_and_whatsapp_to_the_masked_phone() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = send(&t, event("ok", &[("checkToken", &check)])).await;
    let data = success(&r, Some("SELECT_CHANNEL"));
    assert_eq!(r.body["message"], "Choose where to receive your code");
    assert_eq!(r.body["action_time"], "2026-04-03T10:30:45");
    assert_eq!(
        data["channels"],
        json!([
            {"channel": "SMS", "masked": "••• ••• ••50", "isPrimary": true},
            {"channel": "WHATSAPP", "masked": "••• ••• ••50", "isPrimary": false},
        ])
    );
}

#[tokio::test]
async fn user_with_a_verified_email_is_also_offered_email() {
    let t = testing::app();
    seed_user(&t, TZ_PHONE, |u| {
        u.primary_complete = true;
        u.email = Some("joshuas@gmail.com".into());
        u.email_verified = true;
    })
    .await;
    let check = check_token(&t, TZ_PHONE).await;
    let r = send(&t, event("ok", &[("checkToken", &check)])).await;
    let data = success(&r, Some("SELECT_CHANNEL"));
    assert_eq!(
        data["channels"],
        json!([
            {"channel": "SMS", "masked": "••• ••• ••50", "isPrimary": true},
            {"channel": "WHATSAPP", "masked": "••• ••• ••50", "isPrimary": false},
            {"channel": "EMAIL", "masked": "j••••••@g••••.com", "isPrimary": false},
        ])
    );
}

#[tokio::test]
async fn an_unverified_email_is_not_offered() {
    let t = testing::app();
    seed_user(&t, TZ_PHONE, |u| {
        u.primary_complete = true;
        u.email = Some("joshuas@gmail.com".into());
    })
    .await;
    let check = check_token(&t, TZ_PHONE).await;
    let r = send(&t, event("ok", &[("checkToken", &check)])).await;
    let data = success(&r, Some("SELECT_CHANNEL"));
    let channels: Vec<&str> = data["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["SMS", "WHATSAPP"]);
}

#[tokio::test]
async fn listing_channels_does_not_consume_the_check_token() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    for _ in 0..2 {
        let r = send(&t, event("ok", &[("checkToken", &check)])).await;
        success(&r, Some("SELECT_CHANNEL"));
    }
    let sent = auth::start(
        &t.app,
        StartInput {
            check_token: Some(&check),
            channel: Some("SMS"),
            device_id: Some(DEVICE),
            locale: "en".into(),
            ip: None,
        },
    )
    .await;
    assert!(sent.is_ok(), "{sent:?}");
}

#[tokio::test]
async fn check_token_from_another_device_is_a_403_device_mismatch() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = send(&t, event("device-mismatch", &[("checkToken", &check)])).await;
    failure(&r, 403, "FORBIDDEN", "DEVICE_MISMATCH");
}

#[tokio::test]
async fn check_token_consumed_by_passwordless_start_is_refused() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    auth::start(
        &t.app,
        StartInput {
            check_token: Some(&check),
            channel: Some("SMS"),
            device_id: Some(DEVICE),
            locale: "en".into(),
            ip: None,
        },
    )
    .await
    .unwrap();
    let r = send(&t, event("ok", &[("checkToken", &check)])).await;
    failure(&r, 403, "FORBIDDEN", "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn expired_check_token_is_a_403_invalid_token() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    t.clock.advance(600);
    let r = send(&t, event("ok", &[("checkToken", &check)])).await;
    failure(&r, 403, "FORBIDDEN", "INVALID_TOKEN");
}

#[tokio::test]
async fn garbage_check_token_is_a_403_invalid_token() {
    let t = testing::app();
    let r = send(&t, event("ok", &[("checkToken", "not-a-token")])).await;
    failure(&r, 403, "FORBIDDEN", "INVALID_TOKEN");
}

#[tokio::test]
async fn missing_check_token_and_device_id_are_a_422_naming_both() {
    let t = testing::app();
    let r = send(&t, event("missing-fields", &[])).await;
    failure(&r, 422, "UNPROCESSABLE_ENTITY", "VALIDATION_ERROR");
    assert_eq!(fields(&r), ["checkToken", "deviceId"]);
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = send(&t, event("invalid-json", &[("checkToken", &check)])).await;
    failure(&r, 400, "BAD_REQUEST", "INVALID_JSON");
}
