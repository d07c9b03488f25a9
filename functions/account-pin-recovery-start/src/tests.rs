//! `handle` driven by the API Gateway v2 events in `events/account-pin-recovery-start/`.

use nambari_core::base::channel::Pipe;
use nambari_core::testing::calls::credentials;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
const EMAIL: &str = "asha@example.com";

/// A user with a PIN and, when `email`, a verified email.
async fn user(t: &TestApp, email: bool) -> SignedUp {
    let user = sign_up(t, PHONE, DEVICE).await;
    credentials::set_pin(&t.app, Some(&user.access_token), Some("1357"), None)
        .await
        .unwrap();
    if email {
        testing::verify_email(t, &user.access_token, EMAIL).await.unwrap();
    }
    user
}

#[tokio::test]
async fn codes_go_to_the_verified_email_and_to_the_phone() {
    let t = testing::app();
    let u = user(&t, true).await;
    let before = t.sender.messages().len();
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &u.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(data["maskedEmail"], "a•••@e••••••.com");
    assert_eq!(data["maskedPhone"], "••• ••• ••50");
    assert_eq!(data["expiresInSeconds"], 120);
    let sent: Vec<_> = t.sender.messages().into_iter().skip(before).collect();
    let pipes: Vec<(Pipe, String)> = sent.iter().map(|m| (m.pipe, m.to.clone())).collect();
    assert_eq!(pipes, [(Pipe::Email, EMAIL.to_owned()), (Pipe::Sms, PHONE.to_owned())]);
    assert!(sent.iter().all(|m| m.purpose == "pin_recovery"));
    // Sandbox: both codes come back, and they are the ones sent.
    assert_eq!(data["sandboxEmailOtp"], sent[0].code.expose());
    assert_eq!(data["sandboxPhoneOtp"], sent[1].code.expose());
    assert!(!r.data_str("recoveryToken").is_empty());
}

#[tokio::test]
async fn without_a_verified_email_or_a_pin_there_is_nothing_to_recover_by_code() {
    let t = testing::app();
    let u = user(&t, false).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &u.access_token)])).await;
    failure(&r, 400, "NO_VERIFIED_EMAIL");

    let t = testing::app();
    let u = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &u.access_token)])).await;
    failure(&r, 403, "PIN_NOT_SET");
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
}
