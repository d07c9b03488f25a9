//! `handle` driven by the API Gateway v2 events in `events/auth-logout/`.

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
            device_name: None,
            platform: None,
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
async fn logout_ends_this_session_only_and_clears_the_refresh_cookie() {
    let (t, events) = app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let other = sign_in_on(&t, PHONE, OTHER_DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Logged out");
    assert_eq!(*data, Value::Null);
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("nambari_rt=;"), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    let revoked = events.of(EventType::SessionRevoked);
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].data["reason"], "logout");
    assert_eq!(
        revoked[0].user.as_ref().map(|u| u.id.to_string()),
        Some(user.user_id.clone())
    );
    assert!(
        !revoked[0].to_json().contains(&user.access_token),
        "events carry no token"
    );

    assert_eq!(
        error_code(auth::refresh(&t.app, Some(&user.refresh_token)).await),
        Some("INVALID_TOKEN")
    );
    assert_eq!(
        error_code(account::me(&t.app, Some(&user.access_token)).await),
        Some("INVALID_TOKEN")
    );
    assert!(
        account::me(&t.app, Some(&other.access_token)).await.is_ok(),
        "the other device stays signed in"
    );
    assert!(auth::refresh(&t.app, Some(other.refresh_token.expose())).await.is_ok());
}

#[tokio::test]
async fn a_second_logout_with_the_same_access_token_is_refused() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    success(&r, None);
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn without_an_access_token_it_is_unauthorized() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
}
