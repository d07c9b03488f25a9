//! `handle` driven by the API Gateway v2 events in `events/auth-login-password/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::base::values::Platform;
use nambari_core::testing::calls::auth::{self, AccessBody, DeviceVerificationBody};
use nambari_core::testing::calls::credentials;
use nambari_core::testing::calls::password;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};
use serde_json::Value;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
const NEW_DEVICE: &str = "ios-uuid-def456";
/// The password of `ok.json` and `unknown-device.json`.
const PASSWORD: &str = "MySecurePassword123";

/// A signed-up user (on [`DEVICE`]) who has set [`PASSWORD`].
async fn user_with_password(t: &TestApp) -> SignedUp {
    let user = sign_up(t, PHONE, DEVICE).await;
    credentials::set_password(&t.app, Some(&user.access_token), Some(PASSWORD), Some(PASSWORD), None)
        .await
        .unwrap();
    user
}

async fn check_token(t: &TestApp, phone: &str, device: &str) -> String {
    auth::check(&t.app, Some(phone), Some(device), None)
        .await
        .unwrap()
        .check_token
}

#[tokio::test]
async fn the_right_password_on_a_known_device_signs_in_and_uses_up_the_check_token() {
    let t = testing::app();
    let user = user_with_password(&t).await;
    let check = check_token(&t, PHONE, DEVICE).await;
    let vars = [
        ("checkToken", check.as_str()),
        ("deviceToken", user.device_token.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Login successful");
    let next = data["deviceToken"].as_str().unwrap();
    assert_eq!(next.len(), 43);
    assert_ne!(next, user.device_token, "the deviceToken rotates");
    assert_eq!(r.body["action_time"], "2026-04-03T10:30:45");
    assert_eq!(data["requiresDeviceVerification"], false);
    assert_eq!(data["deviceVerificationToken"], Value::Null);
    assert_eq!(data["maskedDestination"], Value::Null);
    assert_eq!(data["expiresIn"], 3600);
    assert_eq!(data["refreshToken"].as_str().map(str::len), Some(43));
    assert_eq!(data["onboarding"]["primaryComplete"], true);
    assert!(r.headers.get("set-cookie").is_none(), "only web clients get the cookie");
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, data["accessToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(claims.sub, user.user_id);
    assert_eq!(claims.body.phone, PHONE);
    assert_eq!(claims.body.amr, ["pwd"]);

    let again = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&again, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn the_right_password_on_an_unknown_device_sends_a_code_to_verify_the_device() {
    let t = testing::app();
    let user = user_with_password(&t).await;
    let check = check_token(&t, PHONE, NEW_DEVICE).await;
    let r = call(handle, &t, event(KRATE, "unknown-device", &[("checkToken", &check)])).await;
    let data = success(&r, Some("VERIFY_DEVICE"));
    assert_eq!(r.body["message"], "Device verification required");
    assert_eq!(data["accessToken"], Value::Null);
    assert_eq!(data["refreshToken"], Value::Null);
    assert_eq!(data["requiresDeviceVerification"], true);
    assert_eq!(data["maskedDestination"], "••• ••• ••50");
    let code = data["sandboxOtp"].as_str().unwrap();
    assert_eq!(
        t.sender.last_code_to(PHONE).as_deref(),
        Some(code),
        "the code went to the phone"
    );

    let token = data["deviceVerificationToken"].as_str().unwrap();
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<DeviceVerificationBody>(TokenKind::DeviceVerification, token, t.app.now())
        .unwrap();
    assert_eq!(claims.body.uid.as_str(), user.user_id);
    assert_eq!(claims.body.phone, PHONE);
    assert_eq!(claims.body.dname.as_deref(), Some("Josh's iPhone 15"));
    assert_eq!(claims.body.plt, Some(Platform::Ios));
    assert_eq!(
        claims.exp - claims.iat,
        900,
        "a deviceVerificationToken lives 15 minutes"
    );

    // The token and the code complete the sign-in on the new device.
    let (_, tokens) = password::verify_device(&t.app, Some(token), Some(code), None)
        .await
        .unwrap();
    assert_eq!(tokens.session.device_id, NEW_DEVICE);
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_counted_until_the_account_locks() {
    let t = testing::app();
    user_with_password(&t).await;
    let check = check_token(&t, PHONE, DEVICE).await;
    let wrong = || event(KRATE, "wrong-password", &[("checkToken", &check)]);
    for _ in 0..4 {
        let r = call(handle, &t, wrong()).await;
        failure(&r, 403, "INVALID_CREDENTIALS");
    }
    let r = call(handle, &t, wrong()).await;
    failure(&r, 403, "ACCOUNT_LOCKED");
    assert_eq!(r.body["retryAfter"], 900);
    assert_eq!(r.headers["retry-after"], "900");

    // Locked: even the right password is refused now.
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("checkToken", &check), ("deviceToken", "none")]),
    )
    .await;
    failure(&r, 403, "ACCOUNT_LOCKED");
}

#[tokio::test]
async fn an_account_without_a_password_is_told_so_and_an_unknown_phone_gets_invalid_credentials() {
    let t = testing::app();
    sign_up(&t, PHONE, DEVICE).await;
    let check = check_token(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("checkToken", &check), ("deviceToken", "none")]),
    )
    .await;
    failure(&r, 403, "PASSWORD_NOT_SET");

    let stranger = check_token(&t, "+255745051299", DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("checkToken", &stranger), ("deviceToken", "none")]),
    )
    .await;
    failure(&r, 403, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn a_body_without_fields_names_each_one_and_a_broken_body_is_invalid_json() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(
        failure(&r, 422, "VALIDATION_ERROR"),
        ["checkToken", "deviceId", "password"]
    );
    let r = call(handle, &t, event(KRATE, "invalid-json", &[])).await;
    failure(&r, 400, "INVALID_JSON");
}
