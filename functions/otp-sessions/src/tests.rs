//! `handle` driven by the API Gateway v2 events in `events/otp-sessions/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use nambari_core::base::otp::Pepper;
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::secrets::Live;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::testing::calls::integrator::{self, Sent};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{Reply, call, event, failure, success};
use serde_json::{Value, json};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const EMAIL: &str = "asha@example.com";

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

async fn caller(t: &TestApp, key: &str) -> Integrator {
    apikeys::authenticate(&t.app, Some(key), "otp").await.unwrap()
}

/// A session of `key` with the `/otp/send` body `body`.
async fn open(t: &TestApp, key: &str, body: Value) -> Sent {
    let parsed = integrator::parse_send(&t.app, body.as_object().unwrap()).unwrap();
    integrator::send(&t.app, &caller(t, key).await, parsed, "en")
        .await
        .unwrap()
}

/// Opens a session and verifies it with its codes (sandbox) or `live_code`.
async fn verified(t: &TestApp, key: &str, body: Value) -> String {
    let sent = open(t, key, body).await;
    let otps: BTreeMap<String, String> = match &sent.sandbox_otps {
        Some(codes) => codes
            .iter()
            .map(|(c, code)| (c.as_str().to_owned(), code.clone()))
            .collect(),
        None => BTreeMap::from([("sms".to_owned(), t.sender.last_code_to(PHONE).unwrap())]),
    };
    let otps = serde_json::json!(otps);
    integrator::verify(&t.app, &caller(t, key).await, Some(&sent.token), Some(&otps))
        .await
        .unwrap();
    sent.token
}

fn sms(sandbox: bool) -> Value {
    json!({"channels": ["sms"], "recipients": {"sms": PHONE}, "sandbox_mode": sandbox})
}

fn tokens(r: &Reply) -> Vec<String> {
    success(r, None)["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["token"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn only_the_keys_own_sessions_are_listed_newest_first_and_never_a_code() {
    let t = app();
    let (key, other) = (new_key(&t, "acme", &[]).await, new_key(&t, "other", &[]).await);
    let first = open(&t, &key, sms(true)).await;
    t.clock.advance(10);
    let second = open(
        &t,
        &key,
        json!({"channels": ["email"], "recipients": {"email": EMAIL}, "metadata": {"order": "o-2"}}),
    )
    .await;
    t.clock.advance(10);
    let third = open(&t, &key, sms(true)).await;
    open(&t, &other, sms(true)).await;

    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key)])).await;
    assert_eq!(r.body["message"], "OTP sessions");
    assert_eq!(
        tokens(&r),
        [&third.token, &second.token, &first.token].map(String::as_str)
    );
    let data = &r.body["data"];
    assert_eq!(data["next_cursor"], Value::Null);
    assert_eq!(
        data["sessions"][1],
        json!({
            "token": second.token,
            "status": "PENDING",
            "channels": {"email": {"recipient": "a•••@e••••••.com", "verified": false, "verified_at": null, "delivered": true}},
            "verification": "ALL",
            "remaining_attempts": 3,
            "sandbox": false,
            "metadata": {"order": "o-2"},
            "created_at": "2026-04-03T10:30:55",
            "expires_at": "2026-04-03T10:40:55",
            "resends": 0,
        })
    );
    let text = r.body.to_string();
    let live_code = t.sender.last_code_to(EMAIL).unwrap();
    for code in [&first, &third]
        .iter()
        .flat_map(|s| s.sandbox_otps.iter().flat_map(|c| c.values()))
        .chain([&live_code])
    {
        assert!(!text.contains(code.as_str()), "no code in a listing: {text}");
    }
    assert!(!text.contains("code_hash") && !text.contains(PHONE), "{text}");
}

#[tokio::test]
async fn filters_keep_the_status_channel_sandbox_and_time_range_asked_for() {
    let t = app();
    let key = new_key(&t, "acme", &[]).await;
    // T0 10:30:45: the only match of `filtered.json`.
    let wanted = verified(&t, &key, sms(true)).await;
    t.clock.advance(30); // 10:31:15
    let pending = open(&t, &key, sms(true)).await.token;
    t.clock.advance(45); // 10:32:00, the `to` bound
    let live = verified(&t, &key, sms(false)).await;
    t.clock.advance(15); // 10:32:15
    let email = verified(
        &t,
        &key,
        json!({"channels": ["email"], "recipients": {"email": EMAIL}, "sandbox_mode": true}),
    )
    .await;

    let r = call(handle, &t, event(KRATE, "filtered", &[("apiKey", &key)])).await;
    assert_eq!(tokens(&r), [&wanted].map(String::as_str));
    assert_eq!(r.body["data"]["sessions"][0]["status"], "VERIFIED");
    let r = call(handle, &t, event(KRATE, "time-range", &[("apiKey", &key)])).await;
    assert_eq!(
        tokens(&r),
        [&live, &pending].map(String::as_str),
        "from 10:31:00 to 10:32:00, both included"
    );
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key)])).await;
    assert_eq!(tokens(&r), [&email, &live, &pending, &wanted].map(String::as_str));
}

#[tokio::test]
async fn a_cursor_continues_the_listing_and_only_for_its_own_key() {
    let t = app();
    let (key, other) = (new_key(&t, "acme", &[]).await, new_key(&t, "other", &[]).await);
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(open(&t, &key, sms(true)).await.token);
        t.clock.advance(10);
    }
    let r = call(handle, &t, event(KRATE, "first-page", &[("apiKey", &key)])).await;
    assert_eq!(tokens(&r), [&made[2], &made[1]].map(String::as_str));
    let cursor = r.data_str("next_cursor");
    let vars = [("apiKey", key.as_str()), ("cursor", cursor.as_str())];
    let r = call(handle, &t, event(KRATE, "next-page", &vars)).await;
    assert_eq!(tokens(&r), [made[0].as_str()]);
    assert_eq!(r.body["data"]["next_cursor"], Value::Null);
    // Another key cannot page through this listing.
    let vars = [("apiKey", other.as_str()), ("cursor", cursor.as_str())];
    let r = call(handle, &t, event(KRATE, "next-page", &vars)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["cursor"]);
}

#[tokio::test]
async fn a_missing_or_revoked_key_is_unauthorized_and_a_key_without_otp_is_forbidden() {
    let t = app();
    let key = new_key(&t, "acme", &[]).await;
    open(&t, &key, sms(true)).await;
    failure(
        &call(handle, &t, event(KRATE, "no-key", &[])).await,
        401,
        "UNAUTHORIZED",
    );
    let lookups = new_key(&t, "lookups", &["users:read"]).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &lookups)])).await;
    failure(&r, 403, "INSUFFICIENT_SCOPE");
    let revoked = apikeys::create(&t.app, "old", &[], false).await.unwrap();
    apikeys::revoke(&t.app, &revoked.record.key_id).await.unwrap();
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", apikeys::reveal(&revoked))])).await;
    failure(&r, 401, "UNAUTHORIZED");
}

#[tokio::test]
async fn every_bad_filter_is_named_in_one_422() {
    let t = app();
    let key = new_key(&t, "acme", &[]).await;
    let r = call(handle, &t, event(KRATE, "bad-filters", &[("apiKey", &key)])).await;
    assert_eq!(
        failure(&r, 422, "VALIDATION_ERROR"),
        ["channel", "from", "limit", "sandbox", "status"]
    );
}
