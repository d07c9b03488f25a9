//! `handle` driven by the API Gateway v2 events in `events/auth-passwordless-channels/`.

use nambari_core::base::ids::UserId;
use nambari_core::model::records::User;
use nambari_core::ports::table::Db;
use nambari_core::testing::calls::auth::{self, StartInput};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const TZ_PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";

/// A stored user with this phone, shaped by `edit`.
async fn seed_user(t: &TestApp, phone: &str, edit: impl FnOnce(&mut User)) -> User {
    let now = t.app.now();
    let mut user = User::new(UserId::generate().unwrap(), phone, "TZ", now);
    edit(&mut user);
    t.app
        .db
        .transact(Db::create_user_writes(&user, now).unwrap().into())
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
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
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
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
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
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
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
        let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
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
    let r = call(handle, &t, event(KRATE, "device-mismatch", &[("checkToken", &check)])).await;
    failure(&r, 403, "DEVICE_MISMATCH");
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
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    failure(&r, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn expired_check_token_is_a_403_invalid_token() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    t.clock.advance(600);
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn garbage_check_token_is_a_403_invalid_token() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", "not-a-token")])).await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn missing_check_token_and_device_id_are_a_422_naming_both() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["checkToken", "deviceId"]);
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "invalid-json", &[("checkToken", &check)])).await;
    failure(&r, 400, "INVALID_JSON");
}
