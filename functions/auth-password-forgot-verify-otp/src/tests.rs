//! `handle` driven by the API Gateway v2 events in `events/auth-password-forgot-verify-otp/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::auth::{self, ResetBody, StartInput};
use nambari_core::testing::calls::credentials;
use nambari_core::testing::calls::password::{self, ResetStarted};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::Value;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
/// Fixed code 123456, nothing sent.
const TEST_PHONE: &str = "+15555550100";
const DEVICE: &str = "android-uuid-abc123";
const PASSWORD: &str = "MySecurePassword123";

async fn check_token(t: &TestApp, phone: &str) -> String {
    auth::check(&t.app, Some(phone), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token
}

/// A user with a password who asked for a reset code: its id and the code session.
async fn reset_started(t: &TestApp, phone: &str) -> (String, ResetStarted) {
    let user = sign_up(t, phone, DEVICE).await;
    credentials::set_password(&t.app, Some(&user.access_token), Some(PASSWORD), Some(PASSWORD), None)
        .await
        .unwrap();
    let check = check_token(t, phone).await;
    let started = password::forgot_initiate(&t.app, Some(&check), Some(DEVICE), "en".into(), None)
        .await
        .unwrap();
    (user.user_id, started)
}

#[tokio::test]
async fn the_right_code_gives_a_reset_token_and_works_only_once() {
    let t = testing::app();
    let (user_id, started) = reset_started(&t, PHONE).await;
    let code = started.sandbox_otp.clone().unwrap();
    let vars = [("tempToken", started.temp_token.as_str()), ("otp", code.as_str())];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Identity confirmed. Set your new password.");
    assert_eq!(data["tempToken"], Value::Null);
    assert_eq!(data["accessToken"], Value::Null);
    assert_eq!(data["expiresInSeconds"], 600);
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<ResetBody>(TokenKind::Reset, data["resetToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(claims.sub, user_id);
    assert_eq!(claims.body.phone, PHONE);
    assert_eq!(claims.body.did, DEVICE);

    let again = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&again, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn a_wrong_code_is_refused_with_the_attempts_left() {
    let t = testing::app();
    let (_, started) = reset_started(&t, TEST_PHONE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "wrong-otp", &[("tempToken", &started.temp_token)]),
    )
    .await;
    failure(&r, 403, "INVALID_OTP");
    assert_eq!(r.body["message"], "Invalid code. 2 attempt(s) left");
}

#[tokio::test]
async fn a_code_past_its_two_minutes_has_expired() {
    let t = testing::app();
    let (_, started) = reset_started(&t, TEST_PHONE).await;
    t.clock.advance(120);
    let vars = [("tempToken", started.temp_token.as_str()), ("otp", "123456")];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&r, 403, "OTP_EXPIRED");
}

#[tokio::test]
async fn a_sign_in_temp_token_cannot_confirm_a_reset() {
    let t = testing::app();
    sign_up(&t, TEST_PHONE, DEVICE).await;
    let check = check_token(&t, TEST_PHONE).await;
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
    .await
    .unwrap();
    let vars = [("tempToken", sent.temp_token.as_str()), ("otp", "123456")];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn a_body_without_fields_names_each_one() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["otp", "tempToken"]);
}
