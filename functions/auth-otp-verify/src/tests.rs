//! `handle` driven by the API Gateway v2 events in `events/auth-otp-verify/`.

use std::sync::Arc;

use nambari_core::base::tokens::TokenKind;
use nambari_core::base::values::Platform;
use nambari_core::model::keys::session_key;
use nambari_core::model::records::Session;
use nambari_core::ports::events::{EventType, RecordingEvents};
use nambari_core::testing::calls::auth::AccessBody;
use nambari_core::testing::calls::one_step;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
/// Fixed code 123456, nothing sent.
const TEST_PHONE: &str = "+15555550100";
const DEVICE: &str = "android-uuid-abc123";

/// The test App, keeping the events it publishes.
fn app() -> (TestApp, Arc<RecordingEvents>) {
    let mut t = testing::app();
    let events = Arc::new(RecordingEvents::default());
    t.edit(|app| app.with_events(events.clone()));
    (t, events)
}

/// `POST /auth/otp/trigger` for `phone`: the sandbox code.
async fn trigger(t: &TestApp, phone: &str) -> String {
    one_step::trigger(&t.app, Some(phone), Some(DEVICE), "en".into(), None)
        .await
        .unwrap()
        .sandbox_otp
        .unwrap()
}

#[tokio::test]
async fn a_first_verify_creates_the_user_and_returns_snake_case_tokens_once() {
    let (t, events) = app();
    let code = trigger(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("otp", &code)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Signed in");
    assert_eq!(data["is_new_user"], true);
    assert_eq!(data["access_token_expires_at"], "2026-04-03T11:30:45");
    assert_eq!(data["refresh_token_expires_at"], "2026-05-03T10:30:45");
    assert_eq!(data["refresh_token"].as_str().map(str::len), Some(43));
    let user_id = data["user_id"].as_str().unwrap();
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, data["access_token"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(claims.sub, user_id);
    assert_eq!(claims.body.phone, PHONE);
    assert_eq!(claims.body.ctry, "TZ");
    assert_eq!(claims.body.amr, ["otp_sms"]);

    let user = t
        .app
        .db
        .user_by_phone(PHONE, t.app.now())
        .await
        .unwrap()
        .expect("a new user");
    assert_eq!(user.id.as_str(), user_id);
    let registered = events.of(EventType::UserRegistered);
    assert_eq!(registered.len(), 1);
    let object = registered[0].user.as_ref().expect("the user object");
    assert_eq!(
        (
            object.id.as_str(),
            object.phone_number.as_str(),
            object.country_code.as_str()
        ),
        (user_id, PHONE, "TZ")
    );
    let session = t
        .app
        .db
        .get::<Session>(&session_key(&user.id, &claims.body.sid), t.app.now())
        .await
        .unwrap()
        .expect("a session");
    assert_eq!(session.device_id, DEVICE);
    assert_eq!(session.device_name.as_deref(), Some("Josh's Pixel 4a"));
    assert_eq!(session.platform, Some(Platform::Android));

    let again = call(handle, &t, event(KRATE, "ok", &[("otp", &code)])).await;
    failure(&again, 403, "INVALID_OTP");
}

#[tokio::test]
async fn a_registered_phone_signs_in_as_its_user() {
    let (t, events) = app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let registered = events.of(EventType::UserRegistered).len();
    let code = trigger(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("otp", &code)])).await;
    let data = success(&r, None);
    assert_eq!(data["is_new_user"], false);
    assert_eq!(data["user_id"], user.user_id);
    assert_eq!(
        events.of(EventType::UserRegistered).len(),
        registered,
        "no second registration"
    );
}

#[tokio::test]
async fn five_wrong_codes_end_the_session() {
    let t = testing::app();
    trigger(&t, TEST_PHONE).await;
    for left in (1..=4).rev() {
        let r = call(handle, &t, event(KRATE, "wrong-otp", &[])).await;
        failure(&r, 403, "INVALID_OTP");
        assert_eq!(r.body["message"], format!("Invalid code. {left} attempt(s) left"));
    }
    let r = call(handle, &t, event(KRATE, "wrong-otp", &[])).await;
    failure(&r, 403, "TOO_MANY_OTP_ATTEMPTS");
    let r = call(handle, &t, event(KRATE, "test-number", &[])).await;
    failure(&r, 403, "TOO_MANY_OTP_ATTEMPTS");
}

#[tokio::test]
async fn a_web_client_gets_its_refresh_token_and_device_token_as_cookies_only() {
    let t = testing::app();
    let code = trigger(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "web", &[("otp", &code)])).await;
    success(&r, None);
    nambari_http::testing::assert_web_session(&r, "refresh_token", true);
}

#[tokio::test]
async fn codes_that_are_missing_never_sent_or_past_two_minutes_are_refused() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["otp", "phone"]);
    let r = call(handle, &t, event(KRATE, "test-number", &[])).await;
    failure(&r, 403, "OTP_EXPIRED");

    trigger(&t, TEST_PHONE).await;
    t.clock.advance(120);
    let r = call(handle, &t, event(KRATE, "test-number", &[])).await;
    failure(&r, 403, "OTP_EXPIRED");
}
