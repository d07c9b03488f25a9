//! `handle` driven by the API Gateway v2 events in `events/auth-check/`.

use nambari_core::base::ids::UserId;
use nambari_core::base::tokens::TokenKind;
use nambari_core::model::records::User;
use nambari_core::ports::table::Db;
use nambari_core::testing::calls::auth::{self, CheckBody};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
use serde_json::{Value, json};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const TZ_PHONE: &str = "+255745051250";
const TEST_PHONE: &str = "+15555550100";
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

#[tokio::test]
async fn new_phone_is_told_to_register_with_a_check_token() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    let data = success(&r, Some("REGISTER"));
    assert_eq!(r.body["message"], "Phone number not registered");
    assert_eq!(r.body["action_time"], "2026-04-03T10:30:45");
    assert_eq!(data["exists"], false);
    assert_eq!(data["primaryComplete"], false);
    assert_eq!(data["maskedPhone"], Value::Null);
    assert_eq!(data["authMethods"], Value::Null);
    assert!(data["checkToken"].as_str().is_some_and(|s| s.split('.').count() == 3));
}

#[tokio::test]
async fn check_token_is_bound_to_the_phone_and_the_device() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    let token = success(&r, Some("REGISTER"))["checkToken"].as_str().unwrap();
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<CheckBody>(TokenKind::Check, token, t.app.now())
        .unwrap();
    assert_eq!(claims.body.phone, TZ_PHONE);
    assert_eq!(claims.body.ctry, "TZ");
    assert_eq!(claims.body.did, DEVICE);
    assert_eq!(claims.body.uid, None);
    assert_eq!(claims.exp - claims.iat, 600);
}

#[tokio::test]
async fn registered_phone_with_primary_done_is_told_to_log_in() {
    let t = testing::app();
    let user = seed_user(&t, TZ_PHONE, |u| {
        u.primary_complete = true;
        u.google = true;
    })
    .await;
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    let data = success(&r, Some("LOGIN"));
    assert_eq!(r.body["message"], "Welcome back");
    assert_eq!(data["exists"], true);
    assert_eq!(data["primaryComplete"], true);
    assert_eq!(data["maskedPhone"], "••• ••• ••50");
    assert_eq!(
        data["authMethods"],
        json!({"passwordless": true, "password": false, "google": true, "apple": false})
    );
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<CheckBody>(TokenKind::Check, data["checkToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(claims.body.uid, Some(user.id));
}

#[tokio::test]
async fn auth_methods_show_a_password_and_apple_when_the_account_has_them() {
    let t = testing::app();
    seed_user(&t, TZ_PHONE, |u| {
        u.primary_complete = true;
        u.has_password = true;
        u.apple = true;
    })
    .await;
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    let data = success(&r, Some("LOGIN"));
    assert_eq!(
        data["authMethods"],
        json!({"passwordless": true, "password": true, "google": false, "apple": true})
    );
}

#[tokio::test]
async fn registered_phone_without_primary_is_told_to_continue_onboarding() {
    let t = testing::app();
    seed_user(&t, TZ_PHONE, |_| {}).await;
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    let data = success(&r, Some("CONTINUE_ONBOARDING"));
    assert_eq!(r.body["message"], "Continue setting up your account");
    assert_eq!(data["exists"], true);
    assert_eq!(data["primaryComplete"], false);
    assert_eq!(data["maskedPhone"], "••• ••• ••50");
    assert_eq!(
        data["authMethods"],
        json!({"passwordless": true, "password": false, "google": false, "apple": false})
    );
    assert!(data["checkToken"].is_string());
}

#[tokio::test]
async fn a_phone_registered_through_verify_otp_continues_onboarding() {
    let t = testing::app();
    let check = auth::check(&t.app, Some(TEST_PHONE), Some(DEVICE), None).await.unwrap();
    let sent = auth::start(
        &t.app,
        auth::StartInput {
            check_token: Some(&check.check_token),
            channel: Some("SMS"),
            device_id: Some(DEVICE),
            locale: "en".into(),
            ip: None,
        },
    )
    .await
    .unwrap();
    auth::verify(
        &t.app,
        auth::VerifyInput {
            temp_token: Some(&sent.temp_token),
            otp: Some("123456"),
            device_name: None,
            platform: None,
            ip: None,
        },
    )
    .await
    .unwrap();
    let r = call(handle, &t, event(KRATE, "test-number", &[])).await;
    let data = success(&r, Some("CONTINUE_ONBOARDING"));
    assert_eq!(data["maskedPhone"], "••• ••• ••00");
}

#[tokio::test]
async fn configured_test_number_is_accepted_although_it_is_fictional() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "test-number", &[])).await;
    let data = success(&r, Some("REGISTER"));
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<CheckBody>(TokenKind::Check, data["checkToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(claims.body.phone, TEST_PHONE);
}

#[tokio::test]
async fn bad_phone_is_a_422_naming_identifier() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "bad-phone", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["identifier"]);
    assert!(
        r.body["data"]["identifier"]
            .as_str()
            .is_some_and(|m| m.contains("international format"))
    );
}

#[tokio::test]
async fn missing_device_id_is_a_422_naming_device_id() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-device-id", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["deviceId"]);
    assert_eq!(r.body["data"]["deviceId"], "is required");
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "invalid-json", &[])).await;
    failure(&r, 400, "INVALID_JSON");
}

#[tokio::test]
async fn body_over_16_kib_is_refused_with_413() {
    let t = testing::app();
    let path = format!("{}/../../events/auth-check/ok.json", env!("CARGO_MANIFEST_DIR"));
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let padding = "x".repeat(16 * 1024);
    ev["body"] = json!(json!({"identifier": TZ_PHONE, "deviceId": DEVICE, "padding": padding}).to_string());
    let req = lambda_http::request::from_str(&ev.to_string()).unwrap();
    let r = call(handle, &t, req).await;
    failure(&r, 413, "PAYLOAD_TOO_LARGE");
}
