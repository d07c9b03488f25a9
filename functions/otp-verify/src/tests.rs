//! `handle` driven by the API Gateway v2 events in `events/otp-verify/`.

use std::sync::Arc;

use nambari_core::base::otp::Pepper;
use nambari_core::ports::events::{EventType, RecordingEvents};
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::secrets::Live;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::testing::calls::integrator::{self, ListFilter, Status};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
use serde_json::{Value, json};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const EMAIL: &str = "asha@example.com";

fn app() -> (TestApp, Arc<RecordingEvents>) {
    let mut t = testing::app_with(Arc::new(MemoryTable::new()), testing::settings());
    let events = Arc::new(RecordingEvents::default());
    t.edit(|app| {
        app.with_api_key_pepper(Arc::new(Live::new(Pepper::new(vec![7; 32]).unwrap())))
            .with_events(events.clone())
    });
    (t, events)
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

/// Opens a session of `key` with the `/otp/send` body `body`: its token and
/// its SMS code (from the response in sandbox, else as sent).
async fn open(t: &TestApp, key: &str, body: Value) -> (String, String) {
    let parsed = integrator::parse_send(&t.app, body.as_object().unwrap()).unwrap();
    let sent = integrator::send(&t.app, &caller(t, key).await, parsed, "en")
        .await
        .unwrap();
    let code = match &sent.sandbox_otps {
        Some(codes) => codes.values().next().unwrap().clone(),
        None => t.sender.last_code_to(PHONE).unwrap(),
    };
    (sent.token, code)
}

async fn listed(t: &TestApp, key: &str, status: Status) -> Vec<String> {
    let f = ListFilter {
        status: Some(status),
        limit: 20,
        ..ListFilter::default()
    };
    let l = integrator::list(&t.app, &caller(t, key).await, f).await.unwrap();
    l.sessions.into_iter().map(|s| s.token).collect()
}

#[tokio::test]
async fn each_right_code_verifies_its_channel_once_and_the_session_lists_as_verified() {
    let (t, events) = app();
    let key = new_key(&t, "acme", &[]).await;
    let (token, sms) = open(
        &t,
        &key,
        json!({"channels": ["sms", "email"], "recipients": {"sms": PHONE, "email": EMAIL}, "metadata": {"order": "o-1"}, "add_contact": true}),
    )
    .await;
    let mail = t.sender.last_code_to(EMAIL).unwrap();
    t.clock.advance(30);
    let vars = [
        ("apiKey", key.as_str()),
        ("token", token.as_str()),
        ("code", sms.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "OTP checked");
    assert_eq!(data["token"], token);
    assert_eq!(data["status"], "PARTIAL");
    assert_eq!(data["results"], json!({"sms": "VERIFIED"}));
    assert_eq!(
        data["channels"]["sms"],
        json!({"recipient": "••• ••• ••50", "verified": true, "verified_at": "2026-04-03T10:31:15", "delivered": true})
    );
    assert_eq!(data["channels"]["email"]["verified"], false);
    assert_eq!(data["remaining_attempts"], 3);
    assert_eq!(data["metadata"], json!({"order": "o-1"}));
    assert!(data.get("user").is_none(), "no contact before the session is verified");
    assert!(events.of(EventType::OtpVerified).is_empty(), "not verified yet");

    // The same code again: already verified, no attempt spent.
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(data["results"], json!({"sms": "ALREADY_VERIFIED"}));
    assert_eq!(
        (data["status"].as_str(), data["remaining_attempts"].as_u64()),
        (Some("PARTIAL"), Some(3))
    );
    assert_eq!(listed(&t, &key, Status::Partial).await, [token.as_str()]);

    // The email code completes the session (strategy ALL): one event, no code in it.
    let vars = [
        ("apiKey", key.as_str()),
        ("token", token.as_str()),
        ("code", mail.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "email", &vars)).await;
    let data = success(&r, None);
    assert_eq!(data["status"], "VERIFIED");
    assert_eq!(data["results"], json!({"email": "VERIFIED"}));
    // `add_contact`: the phone became a user, named in the answer.
    let contact = t.app.db.user_by_phone(PHONE, t.app.now()).await.unwrap().unwrap();
    let user = json!({"id": contact.id.to_string(), "phone_number": PHONE, "country_code": "TZ"});
    assert_eq!(data["user"], user);
    assert_eq!(events.of(EventType::UserRegistered).len(), 1);
    assert_eq!(listed(&t, &key, Status::Verified).await, [token.as_str()]);
    let verified = events.of(EventType::OtpVerified);
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].data["session_id"], token);
    assert_eq!(json!(verified[0].user), user, "the event carries the contact");
    assert_eq!(verified[0].data["channels"], json!(["email", "sms"]));
    let text = verified[0].to_json();
    assert!(
        !text.contains(&sms) && !text.contains(&mail),
        "no code in the event: {text}"
    );
    // The session is over: another submission is skipped, and no second event.
    let r = call(handle, &t, event(KRATE, "email", &vars)).await;
    let data = success(&r, None);
    assert_eq!(data["results"], json!({"email": "SKIPPED"}));
    assert_eq!(data["user"], user);
    assert_eq!(events.of(EventType::OtpVerified).len(), 1);
}

#[tokio::test]
async fn each_wrong_code_spends_an_attempt_and_the_last_one_fails_the_session() {
    let (t, events) = app();
    let key = new_key(&t, "acme", &[]).await;
    let body =
        json!({"channels": ["sms"], "recipients": {"sms": PHONE}, "sandbox_mode": true, "config": {"max_attempts": 2}});
    let (token, code) = open(&t, &key, body).await;
    let vars = [
        ("apiKey", key.as_str()),
        ("token", token.as_str()),
        ("code", code.as_str()),
    ];
    // A channel the session does not have costs nothing; a wrong code costs one.
    let r = call(handle, &t, event(KRATE, "wrong-code", &vars)).await;
    let data = success(&r, None);
    assert_eq!(data["results"], json!({"sms": "INVALID", "whatsapp": "NOT_IN_SESSION"}));
    assert_eq!(
        (data["status"].as_str(), data["remaining_attempts"].as_u64()),
        (Some("PENDING"), Some(1))
    );
    let r = call(handle, &t, event(KRATE, "wrong-code", &vars)).await;
    let data = success(&r, None);
    assert_eq!(
        (data["status"].as_str(), data["remaining_attempts"].as_u64()),
        (Some("FAILED"), Some(0))
    );
    // The right code comes too late.
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(data["results"], json!({"sms": "SKIPPED"}));
    assert_eq!(data["status"], "FAILED");
    assert_eq!(data["channels"]["sms"]["verified"], false);
    assert_eq!(listed(&t, &key, Status::Failed).await, [token]);
    assert!(events.of(EventType::OtpVerified).is_empty());
}

#[tokio::test]
async fn a_code_at_the_sessions_expiry_is_too_late() {
    let (t, _) = app();
    let key = new_key(&t, "acme", &[]).await;
    let body = json!({"channels": ["sms"], "recipients": {"sms": PHONE}, "sandbox_mode": true, "config": {"expiry_minutes": 1}});
    let (token, code) = open(&t, &key, body).await;
    t.clock.advance(60);
    let vars = [
        ("apiKey", key.as_str()),
        ("token", token.as_str()),
        ("code", code.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(data["status"], "EXPIRED");
    assert_eq!(data["results"], json!({"sms": "SKIPPED"}));
    assert_eq!(data["channels"]["sms"]["verified"], false);
    assert_eq!(listed(&t, &key, Status::Expired).await, [token]);
}

#[tokio::test]
async fn a_missing_revoked_unscoped_or_other_key_touches_nothing() {
    let (t, _) = app();
    let key = new_key(&t, "acme", &[]).await;
    let (token, code) = open(
        &t,
        &key,
        json!({"channels": ["sms"], "recipients": {"sms": PHONE}, "sandbox_mode": true}),
    )
    .await;
    let with = |k: &str| event(KRATE, "ok", &[("apiKey", k), ("token", &token), ("code", &code)]);
    let r = call(
        handle,
        &t,
        event(KRATE, "no-key", &[("token", &token), ("code", &code)]),
    )
    .await;
    failure(&r, 401, "UNAUTHORIZED");
    let lookups = new_key(&t, "lookups", &["users:read"]).await;
    failure(&call(handle, &t, with(&lookups)).await, 403, "INSUFFICIENT_SCOPE");
    let revoked = apikeys::create(&t.app, "old", &[], false).await.unwrap();
    apikeys::revoke(&t.app, &revoked.record.key_id).await.unwrap();
    failure(
        &call(handle, &t, with(apikeys::reveal(&revoked))).await,
        401,
        "UNAUTHORIZED",
    );
    // Another integrator's key does not see the session at all.
    let other = new_key(&t, "other", &["otp"]).await;
    failure(&call(handle, &t, with(&other)).await, 404, "NOT_FOUND");
    // None of these spent an attempt or verified anything.
    assert_eq!(listed(&t, &key, Status::Pending).await, [token.as_str()]);
    let r = call(handle, &t, with(&key)).await;
    let data = success(&r, None);
    assert_eq!(
        (data["status"].as_str(), data["remaining_attempts"].as_u64()),
        (Some("VERIFIED"), Some(3))
    );
}

#[tokio::test]
async fn bad_otps_and_a_missing_token_are_422s_and_an_unknown_token_is_not_found() {
    let (t, _) = app();
    let key = new_key(&t, "acme", &[]).await;
    let (token, _) = open(
        &t,
        &key,
        json!({"channels": ["sms"], "recipients": {"sms": PHONE}, "sandbox_mode": true}),
    )
    .await;
    let vars = [("apiKey", key.as_str()), ("token", token.as_str())];
    let r = call(handle, &t, event(KRATE, "bad-otps", &vars)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["otps"]);
    let r = call(handle, &t, event(KRATE, "missing-token", &vars)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["token"]);
    let unknown = [
        ("apiKey", key.as_str()),
        ("token", "ots_0000000000000000000000"),
        ("code", "123456"),
    ];
    let r = call(handle, &t, event(KRATE, "ok", &unknown)).await;
    failure(&r, 404, "NOT_FOUND");
    // The session is as it was.
    assert_eq!(listed(&t, &key, Status::Pending).await, [token]);
}
