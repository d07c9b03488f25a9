//! `handle` driven by the API Gateway v2 events in `events/account-pin/`.

use nambari_core::testing::calls::account;
use nambari_core::testing::calls::credentials;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
/// The PIN of `ok.json` (and the current one of `change.json`).
const PIN: &str = "1357";
/// The new PIN of `change.json` and `wrong-current.json`.
const NEW_PIN: &str = "8046";

/// What a step-up with `pin` answers: `"ok"` or the error code.
async fn step_up(t: &TestApp, access_token: &str, pin: &str) -> &'static str {
    match credentials::step_up(&t.app, Some(access_token), Some(pin), Some("payments:send")).await {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn a_first_pin_is_set_after_a_fresh_code_and_allows_a_step_up() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "PIN set");
    assert_eq!(
        *data,
        json!({"authMethods": {"passwordless": true, "password": false, "google": false, "apple": false, "pin": true}})
    );
    assert_eq!(step_up(&t, &user.access_token, PIN).await, "ok");
    let me = account::me(&t.app, Some(&user.access_token)).await.unwrap();
    assert!(me.auth_methods.pin);
}

#[tokio::test]
async fn a_pin_that_is_easy_to_guess_is_a_422_naming_it() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "weak-pin", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["pin"]);
    assert_eq!(step_up(&t, &user.access_token, "1234").await, "PIN_NOT_SET");
}

#[tokio::test]
async fn a_first_pin_past_the_fresh_sign_in_window_needs_a_new_code() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    t.clock.advance(601);
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 403, "FACTOR_REQUIRED");
    assert_eq!(step_up(&t, &user.access_token, PIN).await, "PIN_NOT_SET");
}

#[tokio::test]
async fn a_fresh_code_does_not_stand_in_for_the_current_pin() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    credentials::set_pin(&t.app, Some(&user.access_token), Some(NEW_PIN), None)
        .await
        .unwrap();
    // Still within FRESH_AUTH_SECONDS of the sign-up's code.
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["currentPin"]);
    assert_eq!(step_up(&t, &user.access_token, NEW_PIN).await, "ok", "unchanged");
}

#[tokio::test]
async fn changing_it_needs_the_current_pin() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    credentials::set_pin(&t.app, Some(&user.access_token), Some(PIN), None)
        .await
        .unwrap();
    t.clock.advance(601);
    let token = [("accessToken", user.access_token.as_str())];

    let r = call(handle, &t, event(KRATE, "ok", &token)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["currentPin"]);
    let r = call(handle, &t, event(KRATE, "wrong-current", &token)).await;
    failure(&r, 403, "INVALID_CREDENTIALS");
    assert_eq!(step_up(&t, &user.access_token, PIN).await, "ok", "unchanged");

    let r = call(handle, &t, event(KRATE, "change", &token)).await;
    success(&r, None);
    assert_eq!(step_up(&t, &user.access_token, NEW_PIN).await, "ok");
    assert_eq!(step_up(&t, &user.access_token, PIN).await, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn without_an_access_token_no_pin_is_set() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert_eq!(step_up(&t, &user.access_token, PIN).await, "PIN_NOT_SET");
}
