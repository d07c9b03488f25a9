//! `handle` driven by the API Gateway v2 events in `events/auth-passwordless-start/`.

use nambari_core::base::channel::Pipe;
use nambari_core::base::ids::UserId;
use nambari_core::model::records::User;
use nambari_core::ports::table::Db;
use nambari_core::testing::calls::auth::{self, Verified, VerifyInput};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
use serde_json::json;

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

/// A checkToken for `phone` on [`DEVICE`].
async fn check_token(t: &TestApp, phone: &str) -> String {
    auth::check(&t.app, Some(phone), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token
}

async fn verify(t: &TestApp, temp_token: &str, otp: &str) -> nambari_core::Result<Verified> {
    auth::verify(
        &t.app,
        VerifyInput {
            temp_token: Some(temp_token),
            otp: Some(otp),
            device_name: None,
            platform: None,
            ip: None,
        },
    )
    .await
}

#[tokio::test]
async fn sms_start_sends_a_code_and_returns_a_temp_token_and_the_sandbox_code() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Verification code sent");
    assert_eq!(r.body["action_time"], "2026-04-03T10:30:45");
    assert!(data["tempToken"].as_str().is_some_and(|s| s.split('.').count() == 3));
    assert_eq!(data["maskedDestination"], "••• ••• ••50");
    assert_eq!(data["channel"], "SMS");
    assert_eq!(data["deliveredVia"], json!(["SMS"]));
    assert_eq!(data["expiresInSeconds"], 120);
    assert_eq!(data["resendAvailableAfterSeconds"], 60);
    let code = data["sandboxOtp"].as_str().expect("sandboxOtp in sandbox mode");
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    let messages = t.sender.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].pipe, Pipe::Sms);
    assert_eq!(messages[0].to, TZ_PHONE);
    assert_eq!(messages[0].code.expose(), code);
}

#[tokio::test]
async fn the_code_is_written_in_the_language_of_the_request() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    success(&r, None);
    assert_eq!(t.sender.messages()[0].locale, "sw");
}

#[tokio::test]
async fn the_sandbox_code_verifies_with_the_temp_token() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    let data = success(&r, None);
    let out = verify(
        &t,
        data["tempToken"].as_str().unwrap(),
        data["sandboxOtp"].as_str().unwrap(),
    )
    .await;
    assert!(matches!(out, Ok(Verified::CollectPrimary { .. })), "{out:?}");
}

#[tokio::test]
async fn test_number_gets_its_fixed_code_and_nothing_is_sent() {
    let t = testing::app();
    let check = check_token(&t, TEST_PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    let data = success(&r, None);
    assert_eq!(data["sandboxOtp"], "123456");
    assert_eq!(data["maskedDestination"], "••• ••• ••00");
    assert!(t.sender.messages().is_empty());
}

#[tokio::test]
async fn sms_and_whatsapp_sends_over_both_pipes() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "sms-and-whatsapp", &[("checkToken", &check)])).await;
    let data = success(&r, None);
    assert_eq!(data["channel"], "SMS_AND_WHATSAPP");
    assert_eq!(data["deliveredVia"], json!(["SMS", "WHATSAPP"]));
    let mut pipes: Vec<Pipe> = t.sender.messages().iter().map(|m| m.pipe).collect();
    pipes.sort();
    assert_eq!(pipes, [Pipe::Sms, Pipe::Whatsapp]);
    let codes: Vec<String> = t.sender.messages().iter().map(|m| m.code.expose().to_owned()).collect();
    assert_eq!(codes[0], codes[1], "both pipes carry the same code");
}

#[tokio::test]
async fn one_failing_pipe_of_two_still_delivers_over_the_other() {
    let t = testing::app();
    t.sender.fail(Pipe::Whatsapp);
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "sms-and-whatsapp", &[("checkToken", &check)])).await;
    let data = success(&r, None);
    assert_eq!(data["channel"], "SMS_AND_WHATSAPP");
    assert_eq!(data["deliveredVia"], json!(["SMS"]));
}

#[tokio::test]
async fn second_use_of_check_token_is_refused() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    success(
        &call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await,
        None,
    );
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    failure(&r, 403, "TOKEN_ALREADY_USED");
    assert_eq!(t.sender.messages().len(), 1, "no second code was sent");
}

#[tokio::test]
async fn a_second_start_replaces_the_earlier_code() {
    let t = testing::app();
    let first = check_token(&t, TEST_PHONE).await;
    let second = check_token(&t, TEST_PHONE).await;
    let r1 = call(handle, &t, event(KRATE, "ok", &[("checkToken", &first)])).await;
    let r2 = call(handle, &t, event(KRATE, "ok", &[("checkToken", &second)])).await;
    let old = success(&r1, None)["tempToken"].as_str().unwrap();
    let new = success(&r2, None)["tempToken"].as_str().unwrap();
    let e = verify(&t, old, "123456").await.unwrap_err();
    assert_eq!((nambari_http::status_of(&e), e.code()), (403, "INVALID_TOKEN"));
    assert!(verify(&t, new, "123456").await.is_ok());
}

#[tokio::test]
async fn internal_channel_value_is_a_400_channel_not_allowed() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "internal-channel", &[("checkToken", &check)])).await;
    failure(&r, 400, "CHANNEL_NOT_ALLOWED");
    assert!(t.sender.messages().is_empty());
}

#[tokio::test]
async fn a_refused_channel_leaves_the_check_token_usable() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "internal-channel", &[("checkToken", &check)])).await;
    failure(&r, 400, "CHANNEL_NOT_ALLOWED");
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    success(&r, None);
}

#[tokio::test]
async fn email_for_a_new_user_is_a_400_channel_not_allowed() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "email", &[("checkToken", &check)])).await;
    failure(&r, 400, "CHANNEL_NOT_ALLOWED");
    assert!(t.sender.messages().is_empty());
}

#[tokio::test]
async fn email_without_a_verified_address_is_a_400_no_verified_email() {
    let t = testing::app();
    seed_user(&t, TZ_PHONE, |u| {
        u.primary_complete = true;
        u.email = Some("joshuas@gmail.com".into());
    })
    .await;
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "email", &[("checkToken", &check)])).await;
    failure(&r, 400, "NO_VERIFIED_EMAIL");
}

#[tokio::test]
async fn email_goes_to_the_verified_address_of_a_returning_user() {
    let t = testing::app();
    seed_user(&t, TZ_PHONE, |u| {
        u.primary_complete = true;
        u.email = Some("joshuas@gmail.com".into());
        u.email_verified = true;
    })
    .await;
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "email", &[("checkToken", &check)])).await;
    let data = success(&r, None);
    assert_eq!(data["channel"], "EMAIL");
    assert_eq!(data["maskedDestination"], "j••••••@g••••.com");
    assert_eq!(data["deliveredVia"], json!(["EMAIL"]));
    let messages = t.sender.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (messages[0].pipe, messages[0].to.as_str()),
        (Pipe::Email, "joshuas@gmail.com")
    );
}

#[tokio::test]
async fn unknown_channel_is_a_422_naming_channel() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "bogus-channel", &[("checkToken", &check)])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["channel"]);
}

#[tokio::test]
async fn check_token_from_another_device_is_a_403_device_mismatch() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "device-mismatch", &[("checkToken", &check)])).await;
    failure(&r, 403, "DEVICE_MISMATCH");
    assert!(t.sender.messages().is_empty());
}

#[tokio::test]
async fn failed_delivery_is_a_502_and_gives_the_check_token_back() {
    let t = testing::app();
    t.sender.fail(Pipe::Sms);
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    failure(&r, 502, "DELIVERY_FAILED");
    t.sender.failing.lock().unwrap().clear();
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    success(&r, None);
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let check = check_token(&t, TZ_PHONE).await;
    let r = call(handle, &t, event(KRATE, "invalid-json", &[("checkToken", &check)])).await;
    failure(&r, 400, "INVALID_JSON");
}
