//! `handle` driven by the API Gateway v2 events in `events/account-email-start/`.

use nambari_core::base::channel::Pipe;
use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::auth::TempBody;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const OTHER_PHONE: &str = "+255745051251";
const DEVICE: &str = "android-uuid-abc123";
/// `ok.json`'s `Asha.Mwangi@Gmail.com`, its domain lowercased.
const EMAIL: &str = "Asha.Mwangi@gmail.com";

fn emails_sent(t: &TestApp) -> usize {
    t.sender.messages().iter().filter(|m| m.pipe == Pipe::Email).count()
}

#[tokio::test]
async fn a_code_is_emailed_and_a_temp_token_for_it_returned() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Verification code sent");
    assert_eq!(data["channel"], "EMAIL");
    assert_eq!(data["maskedDestination"], "A••••••••••@g••••.com");
    assert_eq!(data["expiresInSeconds"], 120);
    assert_eq!(data["resendAvailableAfterSeconds"], 60);
    let code = data["sandboxOtp"].as_str().unwrap();
    assert_eq!(t.sender.last_code_to(EMAIL).as_deref(), Some(code));
    assert_eq!(emails_sent(&t), 1);
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<TempBody>(TokenKind::Temp, data["tempToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(
        claims.body.purpose,
        nambari_core::services::otp_sessions::Purpose::Email.as_str()
    );
    assert_eq!(
        claims.body.uid.as_ref().map(|u| u.as_str()),
        Some(user.user_id.as_str())
    );
}

#[tokio::test]
async fn an_email_another_account_has_verified_is_a_conflict_whatever_its_case() {
    let t = testing::app();
    let other = sign_up(&t, OTHER_PHONE, DEVICE).await;
    testing::verify_email(&t, &other.access_token, "asha.mwangi@gmail.com")
        .await
        .unwrap();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 409, "CONFLICT");
    assert_eq!(emails_sent(&t), 1, "no code for the taken address");
}

#[tokio::test]
async fn an_email_already_verified_on_the_account_is_a_conflict() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    testing::verify_email(&t, &user.access_token, EMAIL).await.unwrap();
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 409, "CONFLICT");
}

#[tokio::test]
async fn an_address_without_a_domain_is_a_422_naming_it() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "bad-email", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["email"]);
    assert_eq!(emails_sent(&t), 0);
}

#[tokio::test]
async fn without_an_access_token_no_code_is_sent() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert_eq!(emails_sent(&t), 0);
}
