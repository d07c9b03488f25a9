//! `handle` driven by the API Gateway v2 events in `events/auth-step-up/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::auth::{AccessBody, StepUpBody};
use nambari_core::testing::calls::credentials;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
/// The PIN of `ok.json`.
const PIN: &str = "1357";

async fn user_with_pin(t: &TestApp) -> SignedUp {
    let user = sign_up(t, PHONE, DEVICE).await;
    credentials::set_pin(&t.app, Some(&user.access_token), Some(PIN), None)
        .await
        .unwrap();
    user
}

#[tokio::test]
async fn the_right_pin_mints_a_five_minute_step_up_token_for_the_scope_and_session() {
    let t = testing::app();
    let user = user_with_pin(&t).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Step-up granted");
    assert_eq!(data["scope"], "payments:send");
    assert_eq!(data["expiresIn"], 300);
    let now = t.app.now();
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<StepUpBody>(TokenKind::StepUp, data["stepUpToken"].as_str().unwrap(), now)
        .unwrap();
    let access = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, &user.access_token, now)
        .unwrap();
    assert_eq!(claims.sub, user.user_id);
    assert_eq!(claims.body.scope, "payments:send");
    assert_eq!(claims.body.sid, access.body.sid);
    assert_eq!(claims.exp, now + 300);
}

#[tokio::test]
async fn five_wrong_pins_lock_step_up_for_fifteen_minutes() {
    let t = testing::app();
    let user = user_with_pin(&t).await;
    let token = [("accessToken", user.access_token.as_str())];
    for _ in 0..4 {
        let r = call(handle, &t, event(KRATE, "wrong-pin", &token)).await;
        failure(&r, 403, "INVALID_CREDENTIALS");
    }
    let r = call(handle, &t, event(KRATE, "wrong-pin", &token)).await;
    failure(&r, 403, "ACCOUNT_LOCKED");
    assert_eq!(r.body["retryAfter"], 900);
    assert_eq!(r.headers["retry-after"], "900");

    let r = call(handle, &t, event(KRATE, "ok", &token)).await;
    failure(&r, 403, "ACCOUNT_LOCKED");
    t.clock.advance(900);
    let r = call(handle, &t, event(KRATE, "ok", &token)).await;
    success(&r, None);
}

#[tokio::test]
async fn without_a_pin_set_there_is_no_step_up() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 403, "PIN_NOT_SET");
}

#[tokio::test]
async fn missing_fields_and_a_scope_outside_the_alphabet_are_422s_naming_them() {
    let t = testing::app();
    let user = user_with_pin(&t).await;
    let token = [("accessToken", user.access_token.as_str())];
    let r = call(handle, &t, event(KRATE, "missing-fields", &token)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["pin", "scope"]);
    let r = call(handle, &t, event(KRATE, "bad-scope", &token)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["scope"]);
}

#[tokio::test]
async fn without_an_access_token_it_is_unauthorized() {
    let t = testing::app();
    user_with_pin(&t).await;
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
}
