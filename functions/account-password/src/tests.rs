//! `handle` driven by the API Gateway v2 events in `events/account-password/`.

use nambari_core::testing::calls::account;
use nambari_core::testing::calls::auth;
use nambari_core::testing::calls::credentials;
use nambari_core::testing::calls::password::{self, PasswordLoginInput, SignIn};
use nambari_core::testing::{self, TestApp};
use nambari_core::{Error, Result};
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
/// The new password of `ok.json` (and the current one of `change.json`).
const PASSWORD: &str = "MySecurePassword123";
/// The new password of `change.json` and `wrong-current.json`.
const NEW_PASSWORD: &str = "MyNewSecurePassword456";

async fn login(t: &TestApp, password: &str) -> Result<SignIn> {
    let check = auth::check(&t.app, Some(PHONE), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token;
    password::login(
        &t.app,
        PasswordLoginInput {
            check_token: Some(&check),
            password: Some(password),
            device_id: Some(DEVICE),
            device_name: None,
            platform: None,
            locale: "en".into(),
            ip: None,
            device_token: None,
        },
    )
    .await
}

/// The password was right: signed in, or (the helper presents no
/// deviceToken) asked to verify the device.
fn signs_in(r: &Result<SignIn>) -> bool {
    matches!(r, Ok(SignIn::SignedIn { .. } | SignIn::VerifyDevice { .. }))
}

fn refused_as(r: Result<SignIn>) -> &'static str {
    r.map(|_| ()).err().map(|e: Error| e.code()).unwrap_or("signed in")
}

#[tokio::test]
async fn a_first_password_is_set_after_a_fresh_code_and_then_signs_in() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Password set");
    assert_eq!(
        *data,
        json!({"authMethods": {"passwordless": true, "password": true, "google": false, "apple": false, "pin": false}})
    );
    assert!(signs_in(&login(&t, PASSWORD).await));
    let me = account::me(&t.app, Some(&user.access_token)).await.unwrap();
    assert!(me.auth_methods.password);
}

#[tokio::test]
async fn a_first_password_past_the_fresh_sign_in_window_needs_a_new_code() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    t.clock.advance(601);
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 403, "FACTOR_REQUIRED");
    assert_eq!(refused_as(login(&t, PASSWORD).await), "PASSWORD_NOT_SET");
}

#[tokio::test]
async fn changing_it_after_the_fresh_sign_in_window_needs_the_current_password() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    credentials::set_password(&t.app, Some(&user.access_token), Some(PASSWORD), Some(PASSWORD), None)
        .await
        .unwrap();
    t.clock.advance(601);
    let token = [("accessToken", user.access_token.as_str())];

    let r = call(handle, &t, event(KRATE, "ok", &token)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["currentPassword"]);
    let r = call(handle, &t, event(KRATE, "wrong-current", &token)).await;
    failure(&r, 403, "INVALID_CREDENTIALS");
    assert!(signs_in(&login(&t, PASSWORD).await), "unchanged");

    let r = call(handle, &t, event(KRATE, "change", &token)).await;
    success(&r, None);
    assert!(signs_in(&login(&t, NEW_PASSWORD).await));
    assert_eq!(refused_as(login(&t, PASSWORD).await), "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn a_fresh_code_does_not_stand_in_for_the_current_password() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    credentials::set_password(&t.app, Some(&user.access_token), Some(NEW_PASSWORD), None, None)
        .await
        .unwrap();
    // Still within FRESH_AUTH_SECONDS of the sign-up's code.
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["currentPassword"]);
    assert!(signs_in(&login(&t, NEW_PASSWORD).await), "unchanged");
    assert_eq!(refused_as(login(&t, PASSWORD).await), "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn passwords_that_do_not_match_are_a_400_and_short_ones_a_422() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let token = [("accessToken", user.access_token.as_str())];
    let r = call(handle, &t, event(KRATE, "mismatch", &token)).await;
    failure(&r, 400, "PASSWORD_MISMATCH");
    let r = call(handle, &t, event(KRATE, "short-password", &token)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["newPassword"]);
    assert_eq!(refused_as(login(&t, PASSWORD).await), "PASSWORD_NOT_SET");
}

#[tokio::test]
async fn without_an_access_token_no_password_is_set() {
    let t = testing::app();
    sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert_eq!(refused_as(login(&t, PASSWORD).await), "PASSWORD_NOT_SET");
}
