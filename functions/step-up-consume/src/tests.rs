//! `handle` driven by the API Gateway v2 events in `events/step-up-consume/`.

use std::sync::Arc;

use nambari_core::base::otp::Pepper;
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::secrets::Live;
use nambari_core::services::apikeys;
use nambari_core::testing::calls::account;
use nambari_core::testing::calls::credentials;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
const PIN: &str = "1357";

fn app() -> TestApp {
    let mut t = testing::app_with(Arc::new(MemoryTable::new()), testing::settings());
    t.edit(|app| app.with_api_key_pepper(Arc::new(Live::new(Pepper::new(vec![7; 32]).unwrap()))));
    t
}

/// A key with `scopes` (empty: every scope).
async fn new_key(t: &TestApp, name: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let k = apikeys::create(&t.app, name, &scopes, false).await.unwrap();
    apikeys::reveal(&k).to_owned()
}

/// `phone` signed up with a PIN, and a stepUpToken for `payments:send`.
async fn stepped_up(t: &TestApp, phone: &str) -> (SignedUp, String) {
    let user = sign_up(t, phone, DEVICE).await;
    credentials::set_pin(&t.app, Some(&user.access_token), Some(PIN), None)
        .await
        .unwrap();
    let s = credentials::step_up(&t.app, Some(&user.access_token), Some(PIN), Some("payments:send"))
        .await
        .unwrap();
    (user, s.step_up_token)
}

#[tokio::test]
async fn a_step_up_token_is_consumed_once_into_its_user_and_scope() {
    let t = app();
    let (user, token) = stepped_up(&t, PHONE).await;
    let key = new_key(&t, "wallet", &["step_up"]).await;
    let vars = [("apiKey", key.as_str()), ("stepUpToken", token.as_str())];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Step-up confirmed");
    assert_eq!(
        *data,
        json!({
            "user": {"id": user.user_id, "phone_number": PHONE, "country_code": "TZ"},
            "scope": "payments:send",
            "issued_at": "2026-04-03T10:30:45",
        })
    );
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&r, 403, "TOKEN_ALREADY_USED");
    // Used is used, whichever integrator asks.
    let other = new_key(&t, "shop", &[]).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("apiKey", &other), ("stepUpToken", &token)]),
    )
    .await;
    failure(&r, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn an_expired_token_or_one_whose_session_ended_is_invalid() {
    let t = app();
    let key = new_key(&t, "wallet", &[]).await;
    let (_, expiring) = stepped_up(&t, PHONE).await;
    let (other, logged_out) = stepped_up(&t, "+231881158457").await;
    account::logout(&t.app, Some(&other.access_token)).await.unwrap();
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("apiKey", &key), ("stepUpToken", &logged_out)]),
    )
    .await;
    failure(&r, 403, "INVALID_TOKEN");
    t.clock.advance(301);
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("apiKey", &key), ("stepUpToken", &expiring)]),
    )
    .await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn a_refused_key_does_not_use_the_token_up() {
    let t = app();
    let (user, token) = stepped_up(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "no-key", &[("stepUpToken", &token)])).await;
    failure(&r, 401, "UNAUTHORIZED");
    let lookups = new_key(&t, "lookups", &["users:read", "otp", "invites"]).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("apiKey", &lookups), ("stepUpToken", &token)]),
    )
    .await;
    failure(&r, 403, "INSUFFICIENT_SCOPE");
    let revoked = apikeys::create(&t.app, "old", &[], false).await.unwrap();
    apikeys::revoke(&t.app, &revoked.record.key_id).await.unwrap();
    let vars = [("apiKey", apikeys::reveal(&revoked)), ("stepUpToken", token.as_str())];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&r, 401, "UNAUTHORIZED");
    // The token is still good for a key with `step_up`.
    let key = new_key(&t, "wallet", &["step_up"]).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("apiKey", &key), ("stepUpToken", &token)]),
    )
    .await;
    assert_eq!(success(&r, None)["user"]["id"], user.user_id);
}

#[tokio::test]
async fn a_missing_token_is_a_422_and_a_garbage_one_is_invalid() {
    let t = app();
    let key = new_key(&t, "wallet", &[]).await;
    let r = call(handle, &t, event(KRATE, "missing-token", &[("apiKey", &key)])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["token"]);
    let r = call(handle, &t, event(KRATE, "bad-token", &[("apiKey", &key)])).await;
    failure(&r, 403, "INVALID_TOKEN");
}
