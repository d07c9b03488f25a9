//! `handle` driven by the API Gateway v2 events in `events/account-email-verify/`.

use nambari_core::base::channel::Pipe;
use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::account;
use nambari_core::testing::calls::auth::{self, AccessBody, Sent};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const OTHER_PHONE: &str = "+255745051251";
/// Fixed code 123456, nothing sent.
const TEST_PHONE: &str = "+15555550100";
const DEVICE: &str = "android-uuid-abc123";
const EMAIL: &str = "asha.mwangi@gmail.com";

async fn email_started(t: &TestApp, access_token: &str, email: &str) -> Sent {
    account::email_start(&t.app, Some(access_token), Some(email), "en".into(), None)
        .await
        .unwrap()
}

async fn email_of(t: &TestApp, access_token: &str) -> (Option<String>, bool) {
    let me = account::me(&t.app, Some(access_token)).await.unwrap();
    (me.email, me.email_verified)
}

#[tokio::test]
async fn the_right_code_verifies_the_email_once_and_makes_it_a_sign_in_channel() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let sent = email_started(&t, &user.access_token, EMAIL).await;
    let code = sent.sandbox_otp.clone().unwrap();
    let vars = [
        ("accessToken", user.access_token.as_str()),
        ("tempToken", sent.temp_token.as_str()),
        ("otp", code.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Email verified");
    assert_eq!(data["onboarding"]["email"], true);
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, data["accessToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert!(claims.body.onb.email);
    assert_eq!(email_of(&t, &user.access_token).await, (Some(EMAIL.to_owned()), true));

    let check = auth::check(&t.app, Some(PHONE), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token;
    let channels = auth::channels(&t.app, Some(&check), Some(DEVICE)).await.unwrap();
    assert!(
        channels.iter().any(|c| c.channel == Pipe::Email),
        "EMAIL is offered at sign-in now"
    );

    let again = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&again, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn a_wrong_code_is_refused_with_the_attempts_left() {
    let t = testing::app();
    let user = sign_up(&t, TEST_PHONE, DEVICE).await;
    let sent = email_started(&t, &user.access_token, EMAIL).await;
    let vars = [
        ("accessToken", user.access_token.as_str()),
        ("tempToken", sent.temp_token.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "wrong-otp", &vars)).await;
    failure(&r, 403, "INVALID_OTP");
    assert_eq!(r.body["message"], "Invalid code. 2 attempt(s) left");
    assert_eq!(email_of(&t, &user.access_token).await, (None, false));
}

#[tokio::test]
async fn the_temp_token_of_another_user_is_refused() {
    let t = testing::app();
    let other = sign_up(&t, OTHER_PHONE, DEVICE).await;
    let sent = email_started(&t, &other.access_token, EMAIL).await;
    let code = sent.sandbox_otp.clone().unwrap();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let vars = [
        ("accessToken", user.access_token.as_str()),
        ("tempToken", sent.temp_token.as_str()),
        ("otp", code.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&r, 403, "INVALID_TOKEN");
    assert_eq!(email_of(&t, &user.access_token).await, (None, false));
}

#[tokio::test]
async fn a_body_without_fields_names_each_one() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "missing-fields", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["otp", "tempToken"]);
}

#[tokio::test]
async fn without_an_access_token_it_is_unauthorized() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let sent = email_started(&t, &user.access_token, EMAIL).await;
    let code = sent.sandbox_otp.clone().unwrap();
    let vars = [("tempToken", sent.temp_token.as_str()), ("otp", code.as_str())];
    let r = call(handle, &t, event(KRATE, "no-token", &vars)).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert_eq!(email_of(&t, &user.access_token).await, (None, false));
}
