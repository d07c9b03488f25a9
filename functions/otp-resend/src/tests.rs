//! `handle` driven by the API Gateway v2 events in `events/otp-resend/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use nambari_core::base::channel::Pipe;
use nambari_core::base::otp::Pepper;
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::secrets::Live;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::testing::calls::integrator::{self, Status};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
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

/// Opens a session of `key` with the `/otp/send` body `body`: its token and
/// the sandbox codes (none when live).
async fn open(t: &TestApp, key: &str, body: Value) -> (String, BTreeMap<String, String>) {
    let parsed = integrator::parse_send(&t.app, body.as_object().unwrap()).unwrap();
    let sent = integrator::send(&t.app, &caller(t, key).await, parsed, "en")
        .await
        .unwrap();
    let codes = sent
        .sandbox_otps
        .unwrap_or_default()
        .into_iter()
        .map(|(c, code)| (c.as_str().to_owned(), code))
        .collect();
    (sent.token, codes)
}

/// Submits `code` for `channel` of session `token`: what it did to that channel.
async fn check(t: &TestApp, key: &str, token: &str, channel: &str, code: &str) -> (Status, &'static str) {
    let otps = serde_json::json!({ channel: code });
    let v = integrator::verify(&t.app, &caller(t, key).await, Some(token), Some(&otps))
        .await
        .unwrap();
    (v.session.status, v.results[channel])
}

fn live_sms() -> Value {
    json!({"channels": ["sms"], "recipients": {"sms": PHONE}})
}

#[tokio::test]
async fn after_the_cooldown_only_the_unverified_channel_gets_a_new_code_and_its_old_one_dies() {
    let t = app();
    let key = new_key(&t, "acme", &[]).await;
    let (token, _) = open(
        &t,
        &key,
        json!({"channels": ["sms", "email"], "recipients": {"sms": PHONE, "email": EMAIL}}),
    )
    .await;
    let (sms, old_mail) = (
        t.sender.last_code_to(PHONE).unwrap(),
        t.sender.last_code_to(EMAIL).unwrap(),
    );
    assert_eq!(
        check(&t, &key, &token, "sms", &sms).await,
        (Status::Partial, "VERIFIED")
    );
    t.clock.advance(60);
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key), ("token", &token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "OTP resent");
    assert_eq!(data["token"], token);
    assert_eq!(data["status"], "PARTIAL");
    assert_eq!(
        data["channels"],
        json!({"email": {"recipient": "a•••@e••••••.com", "status": "SENT"}})
    );
    // The expiry restarts from the resend.
    assert_eq!(data["expires_at"], "2026-04-03T10:41:45");
    assert_eq!(data["expires_in_seconds"], 600);
    assert!(data.get("sandbox_otps").is_none());
    let sent = t.sender.messages();
    assert_eq!(sent.len(), 3, "one new message: {sent:?}");
    let last = sent.last().unwrap();
    assert_eq!((last.pipe, last.to.as_str(), last.ttl), (Pipe::Email, EMAIL, Some(600)));
    let new_mail = last.code.expose().to_owned();
    if new_mail != old_mail {
        assert_eq!(
            check(&t, &key, &token, "email", &old_mail).await,
            (Status::Partial, "INVALID")
        );
    }
    assert_eq!(
        check(&t, &key, &token, "email", &new_mail).await,
        (Status::Verified, "VERIFIED")
    );
    // A verified session is over.
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key), ("token", &token)])).await;
    failure(&r, 409, "CONFLICT");
    assert_eq!(t.sender.messages().len(), 3);
}

#[tokio::test]
async fn a_resend_inside_the_cooldown_is_refused_and_a_repeated_idempotency_key_sends_once() {
    let t = app();
    let key = new_key(&t, "acme", &[]).await;
    let (token, _) = open(&t, &key, live_sms()).await;
    let vars = [("apiKey", key.as_str()), ("token", token.as_str())];
    let r = call(handle, &t, event(KRATE, "idempotent", &vars)).await;
    failure(&r, 400, "RESEND_COOLDOWN");
    assert_eq!(r.body["retryAfter"], 60);
    assert_eq!(r.headers["retry-after"], "60");
    assert_eq!(t.sender.messages().len(), 1, "only the first send");

    // The refusal did not keep the Idempotency-Key: after the cooldown it runs.
    t.clock.advance(60);
    let first = call(handle, &t, event(KRATE, "idempotent", &vars)).await;
    success(&first, None);
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(t.sender.messages().len(), 2);
    t.clock.advance(60);
    let again = call(handle, &t, event(KRATE, "idempotent", &vars)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body["data"], first.body["data"]);
    assert_eq!(t.sender.messages().len(), 2, "the repeat sent nothing");
    let code = t.sender.last_code_to(PHONE).unwrap();
    assert_eq!(
        check(&t, &key, &token, "sms", &code).await,
        (Status::Verified, "VERIFIED")
    );
}

#[tokio::test]
async fn a_sandbox_resend_returns_the_new_code_sends_nothing_restarts_the_expiry_and_stops_after_five() {
    let t = app();
    let key = new_key(&t, "acme", &[]).await;
    let (token, _) = open(
        &t,
        &key,
        json!({"channels": ["sms", "email"], "recipients": {"sms": PHONE, "email": EMAIL}, "sandbox_mode": true}),
    )
    .await;
    let vars = [("apiKey", key.as_str()), ("token", token.as_str())];
    let (mut code, mut expiries) = (String::new(), Vec::new());
    for _ in 0..5 {
        t.clock.advance(60);
        let r = call(handle, &t, event(KRATE, "email", &vars)).await;
        let data = success(&r, None);
        assert_eq!(
            data["channels"],
            json!({"email": {"recipient": "a•••@e••••••.com", "status": "SANDBOX"}})
        );
        let otps = data["sandbox_otps"].as_object().unwrap();
        assert_eq!(otps.keys().collect::<Vec<_>>(), ["email"], "only the channel asked for");
        code = otps["email"].as_str().unwrap().to_owned();
        expiries.push(data["expires_in_seconds"].as_i64().unwrap());
    }
    assert!(t.sender.messages().is_empty(), "sandbox sends nothing");
    t.clock.advance(60);
    let r = call(handle, &t, event(KRATE, "email", &vars)).await;
    failure(&r, 400, "TOO_MANY_RESENDS");
    assert_eq!(
        check(&t, &key, &token, "email", &code).await,
        (Status::Partial, "VERIFIED")
    );
    // Each resend restarts the session's own 10 minutes: no more, however late.
    assert_eq!(expiries, [600; 5]);
}

#[tokio::test]
async fn a_missing_revoked_unscoped_or_other_key_sends_nothing() {
    let t = app();
    let key = new_key(&t, "acme", &[]).await;
    let (token, _) = open(&t, &key, live_sms()).await;
    t.clock.advance(60);
    let with = |k: &str| event(KRATE, "ok", &[("apiKey", k), ("token", &token)]);
    failure(
        &call(handle, &t, event(KRATE, "no-key", &[("token", &token)])).await,
        401,
        "UNAUTHORIZED",
    );
    let lookups = new_key(&t, "lookups", &["users:read", "step_up"]).await;
    failure(&call(handle, &t, with(&lookups)).await, 403, "INSUFFICIENT_SCOPE");
    let revoked = apikeys::create(&t.app, "old", &[], false).await.unwrap();
    apikeys::revoke(&t.app, &revoked.record.key_id).await.unwrap();
    failure(
        &call(handle, &t, with(apikeys::reveal(&revoked))).await,
        401,
        "UNAUTHORIZED",
    );
    let other = new_key(&t, "other", &["otp"]).await;
    failure(&call(handle, &t, with(&other)).await, 404, "NOT_FOUND");
    assert_eq!(t.sender.messages().len(), 1, "only the first send");
    // The owner's resend is not held up by any of these.
    success(&call(handle, &t, with(&key)).await, None);
    assert_eq!(t.sender.messages().len(), 2);
}

#[tokio::test]
async fn bad_or_foreign_channels_and_a_missing_token_are_422s_naming_the_field() {
    let t = app();
    let key = new_key(&t, "acme", &[]).await;
    let (token, _) = open(&t, &key, live_sms()).await;
    t.clock.advance(60);
    let vars = [("apiKey", key.as_str()), ("token", token.as_str())];
    let r = call(handle, &t, event(KRATE, "bad-channels", &vars)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["channels"]);
    // Email is not a channel of this SMS session.
    let r = call(handle, &t, event(KRATE, "email", &vars)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["channels"]);
    let r = call(handle, &t, event(KRATE, "missing-token", &vars)).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["token"]);
    assert_eq!(t.sender.messages().len(), 1, "only the first send");
}
