//! `handle` driven by the API Gateway v2 events in `events/account-device-verify/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::auth::{self, AccessBody};
use nambari_core::testing::calls::credentials;
use nambari_core::testing::calls::password::{self, PasswordLoginInput, SignIn};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
/// Fixed code 123456, nothing sent.
const TEST_PHONE: &str = "+15555550100";
const DEVICE: &str = "android-uuid-abc123";
const NEW_DEVICE: &str = "ios-uuid-def456";
const PASSWORD: &str = "MySecurePassword123";

/// A password sign-in of `phone` on `device`, presenting `device_token`.
async fn sign_in_with_password(t: &TestApp, phone: &str, device: &str, device_token: Option<&str>) -> SignIn {
    let check = auth::check(&t.app, Some(phone), Some(device), None)
        .await
        .unwrap()
        .check_token;
    password::login(
        &t.app,
        PasswordLoginInput {
            check_token: Some(&check),
            password: Some(PASSWORD),
            device_id: Some(device),
            device_name: Some("Josh's iPhone 15"),
            platform: Some("IOS"),
            locale: "en".into(),
            ip: None,
            device_token,
        },
    )
    .await
    .unwrap()
}

/// A user with a password, and the deviceVerificationToken and sandbox code
/// of its password sign-in on [`NEW_DEVICE`].
async fn verify_device_started(t: &TestApp, phone: &str) -> (String, String, String) {
    let user = sign_up(t, phone, DEVICE).await;
    credentials::set_password(&t.app, Some(&user.access_token), Some(PASSWORD), Some(PASSWORD), None)
        .await
        .unwrap();
    match sign_in_with_password(t, phone, NEW_DEVICE, None).await {
        SignIn::VerifyDevice {
            device_verification_token,
            sandbox_otp: Some(code),
            ..
        } => (user.user_id, device_verification_token, code),
        other => panic!("expected VERIFY_DEVICE, got {other:?}"),
    }
}

#[tokio::test]
async fn the_right_code_signs_the_new_device_in_once_and_makes_it_known() {
    let t = testing::app();
    let (user_id, token, code) = verify_device_started(&t, PHONE).await;
    let vars = [("deviceVerificationToken", token.as_str()), ("otp", code.as_str())];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Device verified");
    assert_eq!(data["requiresDeviceVerification"], false);
    assert_eq!(data["expiresIn"], 3600);
    assert_eq!(data["refreshToken"].as_str().map(str::len), Some(43));
    assert_eq!(data["onboarding"]["primaryComplete"], true);
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, data["accessToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(claims.sub, user_id);
    assert_eq!(claims.body.amr, ["pwd", "otp_sms"]);

    let again = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&again, 403, "TOKEN_ALREADY_USED");

    // The device is known now: with the deviceToken it got, the password
    // alone signs it in; without it, it is still a stranger.
    let device_token = data["deviceToken"].as_str().unwrap();
    let login = sign_in_with_password(&t, PHONE, NEW_DEVICE, Some(device_token)).await;
    assert!(matches!(login, SignIn::SignedIn { .. }), "{login:?}");
    let login = sign_in_with_password(&t, PHONE, NEW_DEVICE, None).await;
    assert!(matches!(login, SignIn::VerifyDevice { .. }), "{login:?}");
}

#[tokio::test]
async fn a_wrong_code_is_refused_with_the_attempts_left() {
    let t = testing::app();
    let (_, token, code) = verify_device_started(&t, TEST_PHONE).await;
    assert_eq!(code, "123456");
    let r = call(
        handle,
        &t,
        event(KRATE, "wrong-otp", &[("deviceVerificationToken", &token)]),
    )
    .await;
    failure(&r, 403, "INVALID_OTP");
    assert_eq!(r.body["message"], "Invalid code. 2 attempt(s) left");
}

#[tokio::test]
async fn a_token_of_another_kind_is_not_a_device_verification_token() {
    let t = testing::app();
    let (_, _, code) = verify_device_started(&t, PHONE).await;
    let check = auth::check(&t.app, Some(PHONE), Some(NEW_DEVICE), None)
        .await
        .unwrap()
        .check_token;
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("deviceVerificationToken", &check), ("otp", &code)]),
    )
    .await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn a_body_without_fields_names_each_one_and_a_broken_body_is_invalid_json() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["deviceVerificationToken", "otp"]);
    let r = call(handle, &t, event(KRATE, "invalid-json", &[])).await;
    failure(&r, 400, "INVALID_JSON");
}
