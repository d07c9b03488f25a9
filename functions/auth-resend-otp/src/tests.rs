//! `handle` driven by the API Gateway v2 events in `events/auth-resend-otp/`.

use nambari_core::base::channel::Pipe;
use nambari_core::testing::calls::auth::{self, Sent, StartInput, Verified, VerifyInput};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const TZ_PHONE: &str = "+255745051250";
const TEST_PHONE: &str = "+15555550100";
const TEST_CODE: &str = "123456";
const DEVICE: &str = "android-uuid-abc123";

/// check → passwordless-start over `channel`: the tempToken and the (sandbox) code.
async fn start(t: &TestApp, phone: &str, channel: &str) -> Sent {
    let check = auth::check(&t.app, Some(phone), Some(DEVICE), None).await.unwrap();
    auth::start(
        &t.app,
        StartInput {
            check_token: Some(&check.check_token),
            channel: Some(channel),
            device_id: Some(DEVICE),
            locale: "en".into(),
            ip: None,
        },
    )
    .await
    .unwrap()
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

/// Waits out the cooldown and resends; the new tempToken and code.
async fn resend_after_cooldown(t: &TestApp, temp_token: &str) -> (String, String) {
    t.clock.advance(61);
    let r = call(handle, t, event(KRATE, "ok", &[("tempToken", temp_token)])).await;
    let data = success(&r, None);
    (
        data["tempToken"].as_str().unwrap().to_owned(),
        data["sandboxOtp"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn resend_inside_the_cooldown_is_a_400_with_retry_after() {
    let t = testing::app();
    let sent = start(&t, TZ_PHONE, "SMS").await;
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &sent.temp_token)])).await;
    failure(&r, 400, "RESEND_COOLDOWN");
    assert_eq!(r.body["retryAfter"], 60);
    assert_eq!(r.headers["retry-after"], "60");
    assert_eq!(r.body["message"], "Please wait 60 seconds before requesting a new code");

    t.clock.advance(45);
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &sent.temp_token)])).await;
    failure(&r, 400, "RESEND_COOLDOWN");
    assert_eq!(r.body["retryAfter"], 15);
    assert_eq!(t.sender.messages().len(), 1, "no code was resent");
}

#[tokio::test]
async fn resend_after_the_cooldown_sends_a_new_code_and_token() {
    let t = testing::app();
    let sent = start(&t, TZ_PHONE, "SMS").await;
    t.clock.advance(60);
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &sent.temp_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "OTP resent successfully");
    assert_eq!(r.body["action_time"], "2026-04-03T10:31:45");
    assert_ne!(data["tempToken"], json!(sent.temp_token));
    assert_eq!(data["maskedIdentifier"], "••• ••• ••50");
    assert_eq!(data["channel"], "SMS");
    assert_eq!(data["remainingAttempts"], 4);
    assert_eq!(data["expiresIn"], 120);
    assert_eq!(data["resendAvailableAfterSeconds"], 60);
    let code = data["sandboxOtp"].as_str().unwrap();
    let messages = t.sender.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].pipe, Pipe::Sms);
    assert_eq!(messages[1].code.expose(), code);
    let out = verify(&t, data["tempToken"].as_str().unwrap(), code).await;
    assert!(matches!(out, Ok(Verified::CollectPrimary { .. })), "{out:?}");
}

#[tokio::test]
async fn resend_goes_to_the_same_channels_as_the_first_send() {
    let t = testing::app();
    let sent = start(&t, TZ_PHONE, "SMS_AND_WHATSAPP").await;
    t.clock.advance(61);
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &sent.temp_token)])).await;
    let data = success(&r, None);
    assert_eq!(data["channel"], "SMS_AND_WHATSAPP");
    let mut pipes: Vec<Pipe> = t.sender.messages()[2..].iter().map(|m| m.pipe).collect();
    pipes.sort();
    assert_eq!(pipes, [Pipe::Sms, Pipe::Whatsapp]);
}

#[tokio::test]
async fn sixth_resend_is_a_400_too_many_resends() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE, "SMS").await;
    let mut token = sent.temp_token;
    for left in (0..5).rev() {
        t.clock.advance(61);
        let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &token)])).await;
        let data = success(&r, None);
        assert_eq!(data["remainingAttempts"], left);
        token = data["tempToken"].as_str().unwrap().to_owned();
    }
    t.clock.advance(61);
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &token)])).await;
    failure(&r, 400, "TOO_MANY_RESENDS");
    // The last code still verifies: running out of resends does not end the session.
    assert!(verify(&t, &token, TEST_CODE).await.is_ok());
}

#[tokio::test]
async fn old_code_and_old_temp_token_no_longer_work_after_a_resend() {
    let t = testing::app();
    let sent = start(&t, TZ_PHONE, "SMS").await;
    let old_code = sent.sandbox_otp.clone().unwrap();
    let (mut token, mut code) = resend_after_cooldown(&t, &sent.temp_token).await;
    // A fresh random code may, once in a million, repeat the old one.
    while code == old_code {
        (token, code) = resend_after_cooldown(&t, &token).await;
    }
    let e = verify(&t, &sent.temp_token, &old_code).await.unwrap_err();
    assert_eq!((nambari_http::status_of(&e), e.code()), (403, "INVALID_TOKEN"));
    let e = verify(&t, &token, &old_code).await.unwrap_err();
    assert_eq!((nambari_http::status_of(&e), e.code()), (403, "INVALID_OTP"));
    assert!(verify(&t, &token, &code).await.is_ok());
}

#[tokio::test]
async fn old_temp_token_cannot_ask_for_another_resend() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE, "SMS").await;
    resend_after_cooldown(&t, &sent.temp_token).await;
    t.clock.advance(61);
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &sent.temp_token)])).await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn wrong_code_attempts_carry_over_a_resend() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE, "SMS").await;
    for _ in 0..2 {
        let e = verify(&t, &sent.temp_token, "000000").await.unwrap_err();
        assert_eq!(e.code(), "INVALID_OTP");
    }
    let (token, _) = resend_after_cooldown(&t, &sent.temp_token).await;
    let e = verify(&t, &token, "000000").await.unwrap_err();
    assert_eq!(e.code(), "TOO_MANY_OTP_ATTEMPTS");
}

#[tokio::test]
async fn resend_after_the_code_expired_gives_a_code_that_works() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE, "SMS").await;
    t.clock.advance(121);
    let e = verify(&t, &sent.temp_token, TEST_CODE).await.unwrap_err();
    assert_eq!(e.code(), "OTP_EXPIRED");
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &sent.temp_token)])).await;
    let token = success(&r, None)["tempToken"].as_str().unwrap().to_owned();
    assert!(verify(&t, &token, TEST_CODE).await.is_ok());
}

#[tokio::test]
async fn resend_after_the_code_was_used_is_a_403_token_already_used() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE, "SMS").await;
    verify(&t, &sent.temp_token, TEST_CODE).await.unwrap();
    t.clock.advance(61);
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &sent.temp_token)])).await;
    failure(&r, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn failed_resend_delivery_is_a_502_and_keeps_the_previous_code() {
    let t = testing::app();
    let sent = start(&t, TZ_PHONE, "SMS").await;
    t.sender.fail(Pipe::Sms);
    t.clock.advance(61);
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", &sent.temp_token)])).await;
    failure(&r, 502, "DELIVERY_FAILED");
    let code = sent.sandbox_otp.clone().unwrap();
    assert!(verify(&t, &sent.temp_token, &code).await.is_ok());
}

#[tokio::test]
async fn garbage_temp_token_is_an_invalid_token() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "ok", &[("tempToken", "not-a-token")])).await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn missing_temp_token_is_a_422_naming_it() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["tempToken"]);
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "invalid-json", &[])).await;
    failure(&r, 400, "INVALID_JSON");
}
