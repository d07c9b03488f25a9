//! `handle` driven by the API Gateway v2 events in `events/auth-password-forgot-initiate/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::auth::{self, TempBody};
use nambari_core::testing::calls::credentials;
use nambari_core::testing::calls::password::{self, PasswordLoginInput, SignIn};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};
use serde_json::Value;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
const PASSWORD: &str = "MySecurePassword123";

async fn user_with_password(t: &TestApp) -> SignedUp {
    let user = sign_up(t, PHONE, DEVICE).await;
    credentials::set_password(&t.app, Some(&user.access_token), Some(PASSWORD), Some(PASSWORD), None)
        .await
        .unwrap();
    user
}

async fn check_token(t: &TestApp, phone: &str) -> String {
    auth::check(&t.app, Some(phone), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token
}

#[tokio::test]
async fn a_user_with_a_password_gets_a_reset_code_and_keeps_the_check_token() {
    let t = testing::app();
    let user = user_with_password(&t).await;
    let check = check_token(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Password reset code sent to your phone");
    assert_eq!(data["resetToken"], Value::Null);
    assert_eq!(data["accessToken"], Value::Null);
    assert_eq!(data["maskedPhone"], "••• ••• ••50");
    assert_eq!(data["expiresInSeconds"], 120);
    let code = data["sandboxOtp"].as_str().unwrap();
    assert_eq!(
        t.sender.last_code_to(PHONE).as_deref(),
        Some(code),
        "the code went to the phone"
    );
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<TempBody>(TokenKind::Temp, data["tempToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(
        claims.body.purpose,
        nambari_core::services::otp_sessions::Purpose::Reset.as_str()
    );
    assert_eq!(claims.body.phone, PHONE);
    assert_eq!(
        claims.body.uid.as_ref().map(|u| u.as_str()),
        Some(user.user_id.as_str())
    );

    // Not consumed: the same checkToken still signs in with the password.
    let login = password::login(
        &t.app,
        PasswordLoginInput {
            check_token: Some(&check),
            password: Some(PASSWORD),
            device_id: Some(DEVICE),
            device_name: None,
            platform: None,
            locale: "en".into(),
            ip: None,
            device_token: Some(&user.device_token),
        },
    )
    .await
    .unwrap();
    assert!(matches!(login, SignIn::SignedIn { .. }), "{login:?}");
}

#[tokio::test]
async fn an_account_without_a_password_has_nothing_to_reset() {
    let t = testing::app();
    sign_up(&t, PHONE, DEVICE).await;
    let check = check_token(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    failure(&r, 403, "PASSWORD_NOT_SET");
    assert_eq!(t.sender.messages().len(), 1, "only the sign-up code was sent");
}

#[tokio::test]
async fn a_phone_without_an_account_is_not_found() {
    let t = testing::app();
    let check = check_token(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    failure(&r, 404, "NOT_FOUND");
    assert!(t.sender.messages().is_empty());
}

#[tokio::test]
async fn a_check_token_from_another_device_is_a_device_mismatch() {
    let t = testing::app();
    user_with_password(&t).await;
    let check = check_token(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "device-mismatch", &[("checkToken", &check)])).await;
    failure(&r, 403, "DEVICE_MISMATCH");
}

#[tokio::test]
async fn a_body_without_fields_names_each_one_and_a_broken_body_is_invalid_json() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["checkToken", "deviceId"]);
    let r = call(handle, &t, event(KRATE, "invalid-json", &[])).await;
    failure(&r, 400, "INVALID_JSON");
}
