//! `handle` driven by the API Gateway v2 events in `events/auth-password-forgot-reset/`.

use std::sync::Arc;

use nambari_core::base::tokens::TokenKind;
use nambari_core::ports::events::{EventType, RecordingEvents};
use nambari_core::testing::calls::account;
use nambari_core::testing::calls::auth::{self, AccessBody};
use nambari_core::testing::calls::credentials;
use nambari_core::testing::calls::password::{self, PasswordLoginInput, SignIn};
use nambari_core::testing::{self, TestApp};
use nambari_core::{Error, Result};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};
use serde_json::Value;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
const OLD_PASSWORD: &str = "MySecurePassword123";
/// The new password of `ok.json`.
const NEW_PASSWORD: &str = "MyNewSecurePassword456";

/// The test App, keeping the events it publishes.
fn app() -> (TestApp, Arc<RecordingEvents>) {
    let mut t = testing::app();
    let events = Arc::new(RecordingEvents::default());
    t.edit(|app| app.with_events(events.clone()));
    (t, events)
}

/// A user with [`OLD_PASSWORD`] and a resetToken from the forgot-password flow.
async fn reset_token(t: &TestApp) -> (SignedUp, String) {
    let user = sign_up(t, PHONE, DEVICE).await;
    credentials::set_password(
        &t.app,
        Some(&user.access_token),
        Some(OLD_PASSWORD),
        Some(OLD_PASSWORD),
        None,
    )
    .await
    .unwrap();
    let check = auth::check(&t.app, Some(PHONE), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token;
    let started = password::forgot_initiate(&t.app, Some(&check), Some(DEVICE), "en".into(), None)
        .await
        .unwrap();
    let code = started.sandbox_otp.unwrap();
    let reset = password::forgot_verify(&t.app, Some(&started.temp_token), Some(&code), None)
        .await
        .unwrap();
    (user, reset)
}

/// A password sign-in on [`DEVICE`] without its deviceToken: `Ok` (a
/// sign-in or a device check) exactly when the password is right.
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

fn code_of<T: std::fmt::Debug>(r: Result<T>) -> (&'static str, u16) {
    let e: Error = r.expect_err("refused");
    (e.code(), nambari_http::status_of(&e))
}

#[tokio::test]
async fn a_reset_sets_the_new_password_signs_in_afresh_and_ends_every_old_session() {
    let (t, events) = app();
    let (user, reset) = reset_token(&t).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("resetToken", &reset)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Password updated. All other sessions signed out.");
    assert_eq!(data["resetToken"], Value::Null);
    assert_eq!(data["maskedPhone"], Value::Null);
    assert_eq!(data["refreshToken"].as_str().map(str::len), Some(43));
    assert_eq!(data["onboarding"]["primaryComplete"], true);
    let access = data["accessToken"].as_str().unwrap();
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, access, t.app.now())
        .unwrap();
    assert_eq!(claims.sub, user.user_id);
    assert_eq!(claims.body.amr, ["pwd", "reset"]);
    assert!(account::me(&t.app, Some(access)).await.is_ok());
    let revoked = events.of(EventType::SessionRevoked);
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].data["reason"], "password_reset");
    assert_eq!(revoked[0].data["all_sessions"], true);

    // The sign-up session is over, access and refresh alike.
    assert_eq!(
        code_of(account::me(&t.app, Some(&user.access_token)).await),
        ("INVALID_TOKEN", 401)
    );
    assert_eq!(
        code_of(auth::refresh(&t.app, Some(&user.refresh_token)).await),
        ("INVALID_TOKEN", 401)
    );

    // The new password signs in; the old one no longer does.
    assert!(matches!(
        login(&t, NEW_PASSWORD).await,
        Ok(SignIn::SignedIn { .. } | SignIn::VerifyDevice { .. })
    ));
    assert_eq!(code_of(login(&t, OLD_PASSWORD).await), ("INVALID_CREDENTIALS", 403));

    let again = call(handle, &t, event(KRATE, "ok", &[("resetToken", &reset)])).await;
    failure(&again, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn passwords_that_do_not_match_are_a_400_and_leave_the_reset_token_usable() {
    let t = testing::app();
    let (_, reset) = reset_token(&t).await;
    let r = call(handle, &t, event(KRATE, "mismatch", &[("resetToken", &reset)])).await;
    failure(&r, 400, "PASSWORD_MISMATCH");
    let r = call(handle, &t, event(KRATE, "ok", &[("resetToken", &reset)])).await;
    success(&r, None);
}

#[tokio::test]
async fn a_password_under_eight_characters_is_a_422_naming_it() {
    let t = testing::app();
    let (_, reset) = reset_token(&t).await;
    let r = call(handle, &t, event(KRATE, "short-password", &[("resetToken", &reset)])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["newPassword"]);
    assert!(matches!(
        login(&t, OLD_PASSWORD).await,
        Ok(SignIn::SignedIn { .. } | SignIn::VerifyDevice { .. })
    ));
}

#[tokio::test]
async fn an_access_token_is_not_a_reset_token() {
    let t = testing::app();
    let (user, _) = reset_token(&t).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("resetToken", &user.access_token)])).await;
    failure(&r, 403, "INVALID_TOKEN");
    assert!(matches!(
        login(&t, OLD_PASSWORD).await,
        Ok(SignIn::SignedIn { .. } | SignIn::VerifyDevice { .. })
    ));
}

#[tokio::test]
async fn a_broken_body_is_invalid_json() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "invalid-json", &[])).await;
    failure(&r, 400, "INVALID_JSON");
}
