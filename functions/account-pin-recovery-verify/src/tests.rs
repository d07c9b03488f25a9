//! `handle` driven by the API Gateway v2 events in `events/account-pin-recovery-verify/`.

use nambari_core::ports::sender::Notice;
use nambari_core::testing::calls::credentials;
use nambari_core::testing::calls::pin_recovery;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
const EMAIL: &str = "asha@example.com";
/// The new PIN of `ok.json`.
const NEW_PIN: &str = "8046";

/// A user with the PIN 1357 and a verified email, and the access token the
/// email verification left (same session).
async fn user(t: &TestApp) -> SignedUp {
    let user = sign_up(t, PHONE, DEVICE).await;
    credentials::set_pin(&t.app, Some(&user.access_token), Some("1357"), None)
        .await
        .unwrap();
    testing::verify_email(t, &user.access_token, EMAIL).await.unwrap();
    user
}

/// Starts a recovery: the token and the two codes.
async fn start(t: &TestApp, u: &SignedUp) -> (String, String, String) {
    let s = pin_recovery::start(&t.app, Some(&u.access_token), "en".into(), None)
        .await
        .unwrap();
    (
        s.recovery_token,
        s.sandbox_email_otp.unwrap(),
        s.sandbox_phone_otp.unwrap(),
    )
}

async fn step_up(t: &TestApp, access_token: &str, pin: &str) -> &'static str {
    match credentials::step_up(&t.app, Some(access_token), Some(pin), Some("payments:send")).await {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn both_codes_set_the_new_pin_end_every_session_and_tell_both_channels() {
    let t = testing::app();
    let u = user(&t).await;
    let (token, email, phone) = start(&t, &u).await;
    let vars = [
        ("accessToken", u.access_token.as_str()),
        ("recoveryToken", token.as_str()),
        ("emailOtp", email.as_str()),
        ("phoneOtp", phone.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(data["authMethods"]["pin"], true);
    let fresh = r.data_str("accessToken");
    assert_eq!(step_up(&t, &fresh, NEW_PIN).await, "ok");
    assert_eq!(step_up(&t, &fresh, "1357").await, "INVALID_CREDENTIALS");
    // The session that asked ended with every other one.
    assert_eq!(step_up(&t, &u.access_token, NEW_PIN).await, "INVALID_TOKEN");
    let notices: Vec<(String, Notice)> = t.sender.notices().into_iter().map(|n| (n.to, n.notice)).collect();
    assert_eq!(
        notices,
        [
            (EMAIL.to_owned(), Notice::PinReset),
            (PHONE.to_owned(), Notice::PinReset)
        ]
    );
    // Spent.
    let vars = [
        ("accessToken", fresh.as_str()),
        ("recoveryToken", token.as_str()),
        ("emailOtp", email.as_str()),
        ("phoneOtp", phone.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&r, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn the_phone_code_alone_is_not_enough() {
    let t = testing::app();
    let u = user(&t).await;
    let (token, email, phone) = start(&t, &u).await;
    let wrong = if email == "000000" { "111111" } else { "000000" };
    let vars = [
        ("accessToken", u.access_token.as_str()),
        ("recoveryToken", token.as_str()),
        ("wrongOtp", wrong),
        ("phoneOtp", phone.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "wrong-email-code", &vars)).await;
    failure(&r, 403, "INVALID_OTP");
    assert_eq!(step_up(&t, &u.access_token, "1357").await, "ok", "the PIN stands");
    assert!(t.sender.notices().is_empty());
}

#[tokio::test]
async fn missing_fields_and_a_weak_pin_are_one_422_and_no_token_is_unauthorized() {
    let t = testing::app();
    let u = user(&t).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "missing-fields", &[("accessToken", &u.access_token)]),
    )
    .await;
    assert_eq!(
        failure(&r, 422, "VALIDATION_ERROR"),
        ["emailOtp", "phoneOtp", "pin", "recoveryToken"]
    );
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
}
