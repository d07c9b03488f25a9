//! `handle` driven by the API Gateway v2 events in `events/account-sessions-list/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::account;
use nambari_core::testing::calls::auth::{self, AccessBody, StartInput, Tokens, Verified, VerifyInput};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
const OTHER_DEVICE: &str = "ios-uuid-def456";

/// A passwordless sign-in of the (signed-up) `phone` on `device`.
async fn sign_in_on(t: &TestApp, phone: &str, device: &str, name: &str, platform: &str) -> Tokens {
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
            device_name: Some(name),
            platform: Some(platform),
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

fn sid_of(t: &TestApp, access_token: &str) -> String {
    t.app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, access_token, t.app.now())
        .unwrap()
        .body
        .sid
        .to_string()
}

#[tokio::test]
async fn every_live_session_is_listed_most_recently_used_first_with_the_current_one_marked() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    t.clock.advance(60);
    let phone = sign_in_on(&t, PHONE, OTHER_DEVICE, "Asha's iPhone", "IOS").await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Your sessions");
    assert_eq!(
        data["sessions"],
        json!([
            {"id": phone.session.sid.to_string(), "deviceName": "Asha's iPhone", "platform": "IOS",
             "createdAt": "2026-04-03T10:31:45", "lastUsedAt": "2026-04-03T10:31:45", "current": false},
            {"id": sid_of(&t, &user.access_token), "deviceName": null, "platform": null,
             "createdAt": "2026-04-03T10:30:45", "lastUsedAt": "2026-04-03T10:30:45", "current": true},
        ])
    );
}

#[tokio::test]
async fn a_revoked_session_is_no_longer_listed() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let phone = sign_in_on(&t, PHONE, OTHER_DEVICE, "Asha's iPhone", "IOS").await;
    account::revoke_session(&t.app, Some(&user.access_token), Some(phone.session.sid.as_str()))
        .await
        .unwrap();
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    let sessions = data["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{data}");
    assert_eq!(sessions[0]["id"], sid_of(&t, &user.access_token));
    assert_eq!(sessions[0]["current"], true);
}

#[tokio::test]
async fn without_an_access_token_it_is_unauthorized() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
}
