//! `handle` driven by the API Gateway v2 events in `events/account-session-revoke/`.

use std::sync::Arc;

use nambari_core::ports::events::{EventType, RecordingEvents};
use nambari_core::testing::calls::account;
use nambari_core::testing::calls::auth::{self, StartInput, Tokens, Verified, VerifyInput};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::Value;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const OTHER_PHONE: &str = "+255745051251";
const DEVICE: &str = "android-uuid-abc123";
const OTHER_DEVICE: &str = "ios-uuid-def456";

/// The test App, keeping the events it publishes.
fn app() -> (TestApp, Arc<RecordingEvents>) {
    let mut t = testing::app();
    let events = Arc::new(RecordingEvents::default());
    t.edit(|app| app.with_events(events.clone()));
    (t, events)
}

/// A passwordless sign-in of the (signed-up) `phone` on `device`.
async fn sign_in_on(t: &TestApp, phone: &str, device: &str) -> Tokens {
    let check = auth::check(&t.app, Some(phone), Some(device), None)
        .await
        .unwrap()
        .check_token;
    let sent = auth::start(
        &t.app,
        StartInput {
            check_token: Some(&check),
            channel: Some("SMS"),
            device_id: Some(device),
            locale: "en".into(),
            ip: None,
        },
    )
    .await
    .unwrap();
    let verified = auth::verify(
        &t.app,
        VerifyInput {
            temp_token: Some(&sent.temp_token),
            otp: sent.sandbox_otp.as_deref(),
            device_name: Some("Asha's iPhone"),
            platform: Some("IOS"),
            ip: None,
        },
    )
    .await
    .unwrap();
    match verified {
        Verified::SignedIn { tokens, .. } => *tokens,
        other => panic!("expected a sign-in, got {other:?}"),
    }
}

fn error_code<T>(r: nambari_core::Result<T>) -> Option<&'static str> {
    r.err().map(|e| e.code())
}

#[tokio::test]
async fn another_device_is_signed_out_and_its_tokens_die() {
    let (t, events) = app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let phone = sign_in_on(&t, PHONE, OTHER_DEVICE).await;
    let sid = phone.session.sid.to_string();
    let vars = [("accessToken", user.access_token.as_str()), ("sessionId", sid.as_str())];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Session revoked");
    assert_eq!(*data, Value::Null);
    let revoked = events.of(EventType::SessionRevoked);
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].data["session_id"], sid);
    assert_eq!(revoked[0].data["reason"], "revoked");

    assert_eq!(
        error_code(auth::refresh(&t.app, Some(phone.refresh_token.expose())).await),
        Some("INVALID_TOKEN")
    );
    assert_eq!(
        error_code(account::me(&t.app, Some(&phone.access_token)).await),
        Some("INVALID_TOKEN")
    );
    assert!(
        account::me(&t.app, Some(&user.access_token)).await.is_ok(),
        "this device stays signed in"
    );

    let again = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&again, 404, "NOT_FOUND");
}

#[tokio::test]
async fn a_session_of_another_user_is_not_found_and_stays_signed_in() {
    let t = testing::app();
    let other = sign_up(&t, OTHER_PHONE, DEVICE).await;
    let theirs = sign_in_on(&t, OTHER_PHONE, OTHER_DEVICE).await;
    let user = sign_up(&t, PHONE, DEVICE).await;
    let sid = theirs.session.sid.to_string();
    let vars = [("accessToken", user.access_token.as_str()), ("sessionId", sid.as_str())];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&r, 404, "NOT_FOUND");
    assert!(account::me(&t.app, Some(&theirs.access_token)).await.is_ok());
    assert!(account::me(&t.app, Some(&other.access_token)).await.is_ok());
}

#[tokio::test]
async fn an_id_that_is_not_a_session_id_is_a_422_naming_it() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "bad-id", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["id"]);
}

#[tokio::test]
async fn without_an_access_token_nothing_is_revoked() {
    let t = testing::app();
    sign_up(&t, PHONE, DEVICE).await;
    let phone = sign_in_on(&t, PHONE, OTHER_DEVICE).await;
    let sid = phone.session.sid.to_string();
    let r = call(handle, &t, event(KRATE, "no-token", &[("sessionId", &sid)])).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert!(account::me(&t.app, Some(&phone.access_token)).await.is_ok());
}
