//! `handle` driven by the API Gateway v2 events in `events/otp-send/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use nambari_core::base::channel::Pipe;
use nambari_core::base::otp::Pepper;
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::secrets::Live;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::testing::calls::integrator::{self, ListFilter, Status};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
/// The recipients of `ok.json`.
const PHONE: &str = "+255745051250";
const EMAIL: &str = "asha@example.com";

fn app() -> TestApp {
    let mut t = testing::app_with(Arc::new(MemoryTable::new()), testing::settings());
    t.edit(|app| app.with_api_key_pepper(Arc::new(Live::new(Pepper::new(vec![7; 32]).unwrap()))));
    t
}

/// A key named `name` with `scopes` (empty: every scope); `test`: `nmb_test_`.
async fn new_key(t: &TestApp, name: &str, scopes: &[&str], test: bool) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let k = apikeys::create(&t.app, name, &scopes, test).await.unwrap();
    apikeys::reveal(&k).to_owned()
}

async fn caller(t: &TestApp, key: &str) -> Integrator {
    apikeys::authenticate(&t.app, Some(key), "otp").await.unwrap()
}

#[tokio::test]
async fn a_live_send_delivers_each_channel_its_own_code_and_returns_none_of_them() {
    let t = app();
    let key = new_key(&t, "acme", &[], false).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "OTP sent");
    let token = r.data_str("token");
    assert!(token.starts_with("ots_"), "{token}");
    assert_eq!(data["status"], "PENDING");
    assert_eq!(data["sandbox"], false);
    assert!(data.get("sandbox_otps").is_none(), "live mode returns no code: {data}");
    assert_eq!(
        data["channels"],
        json!({
            "email": {"recipient": "a•••@e••••••.com", "status": "SENT"},
            "sms": {"recipient": "••• ••• ••50", "status": "SENT"},
        })
    );
    assert_eq!(data["expires_at"], "2026-04-03T10:40:45");
    assert_eq!(data["expires_in_seconds"], 600);

    // Exactly one message per channel, each with the session's expiry.
    let sent = t.sender.messages();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let mut codes = BTreeMap::new();
    for (pipe, to, channel) in [(Pipe::Sms, PHONE, "sms"), (Pipe::Email, EMAIL, "email")] {
        let m = sent.iter().find(|m| m.pipe == pipe).unwrap();
        assert_eq!(
            (m.to.as_str(), m.purpose, m.ttl, m.locale.as_str()),
            (to, "integrator", Some(600), "en")
        );
        assert_eq!(m.code.expose().len(), 6);
        assert!(!r.body.to_string().contains(m.code.expose()), "no code in the response");
        codes.insert(channel.to_owned(), m.code.expose().to_owned());
    }

    // The session is stored with its metadata, and the codes sent are its codes.
    let caller = caller(&t, &key).await;
    let listed = integrator::list(
        &t.app,
        &caller,
        ListFilter {
            limit: 20,
            ..ListFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.sessions.len(), 1);
    assert_eq!(listed.sessions[0].token, token);
    assert_eq!(
        json!(listed.sessions[0].metadata),
        json!({"purpose": "kyc", "customer": "c-17"})
    );
    let codes = json!(codes);
    let verified = integrator::verify(&t.app, &caller, Some(&token), Some(&codes))
        .await
        .unwrap();
    assert_eq!(verified.session.status, Status::Verified);
}

#[tokio::test]
async fn sandbox_mode_and_test_keys_return_the_codes_and_send_nothing() {
    let t = app();
    let key = new_key(&t, "acme", &[], false).await;
    let r = call(handle, &t, event(KRATE, "sandbox", &[("apiKey", &key)])).await;
    let data = success(&r, None);
    assert_eq!(data["sandbox"], true);
    assert_eq!(data["channels"]["sms"]["status"], "SANDBOX");
    assert_eq!(data["channels"]["whatsapp"]["status"], "SANDBOX");
    let otps = data["sandbox_otps"].as_object().unwrap();
    assert_eq!(otps.keys().collect::<Vec<_>>(), ["sms", "whatsapp"]);
    assert!(
        otps.values().all(|c| c.as_str().unwrap().len() == 4),
        "config.otp_length: {data}"
    );
    // `verification: ANY`: the WhatsApp code alone completes the session.
    let caller = caller(&t, &key).await;
    let only = BTreeMap::from([("whatsapp".to_owned(), otps["whatsapp"].as_str().unwrap().to_owned())]);
    let only = json!(only);
    let v = integrator::verify(&t.app, &caller, Some(&r.data_str("token")), Some(&only))
        .await
        .unwrap();
    assert_eq!(v.session.status, Status::Verified);

    // A test key is sandboxed even when the body does not ask for it.
    let test_key = new_key(&t, "acme-test", &[], true).await;
    assert!(test_key.starts_with("nmb_test_"));
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &test_key)])).await;
    let data = success(&r, None);
    assert_eq!(data["sandbox"], true);
    assert_eq!(data["channels"]["sms"]["status"], "SANDBOX");
    assert_eq!(data["sandbox_otps"]["email"].as_str().map(str::len), Some(6));
    assert!(
        t.sender.messages().is_empty(),
        "sandbox sends nothing: {:?}",
        t.sender.messages()
    );
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_first_response_only_for_the_same_api_key() {
    let t = app();
    let (a, b) = (new_key(&t, "a", &[], false).await, new_key(&t, "b", &[], false).await);
    let first = call(handle, &t, event(KRATE, "idempotent", &[("apiKey", &a)])).await;
    success(&first, None);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = call(handle, &t, event(KRATE, "idempotent", &[("apiKey", &a)])).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body["data"], first.body["data"]);
    assert_eq!(t.sender.messages().len(), 1, "the repeat sent nothing");

    // The same Idempotency-Key from another API key is another request.
    let other = call(handle, &t, event(KRATE, "idempotent", &[("apiKey", &b)])).await;
    success(&other, None);
    assert!(other.headers.get("idempotent-replayed").is_none());
    assert_ne!(other.data_str("token"), first.data_str("token"));
    assert_eq!(t.sender.messages().len(), 2);
}

#[tokio::test]
async fn a_missing_or_revoked_key_is_unauthorized_and_a_key_without_otp_is_forbidden() {
    let t = app();
    let r = call(handle, &t, event(KRATE, "no-key", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    let lookups = new_key(&t, "lookups", &["users:read", "invites"], false).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &lookups)])).await;
    failure(&r, 403, "INSUFFICIENT_SCOPE");
    let revoked = apikeys::create(&t.app, "old", &[], false).await.unwrap();
    apikeys::revoke(&t.app, &revoked.record.key_id).await.unwrap();
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", apikeys::reveal(&revoked))])).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert!(t.sender.messages().is_empty());
}

#[tokio::test]
async fn a_bad_body_names_every_bad_field_and_broken_json_is_invalid_json() {
    let t = app();
    let key = new_key(&t, "acme", &[], false).await;
    let r = call(handle, &t, event(KRATE, "bad-fields", &[("apiKey", &key)])).await;
    assert_eq!(
        failure(&r, 422, "VALIDATION_ERROR"),
        [
            "config.max_attempts",
            "recipients.email",
            "recipients.whatsapp",
            "sandbox_mode",
            "verification"
        ]
    );
    let r = call(handle, &t, event(KRATE, "invalid-json", &[("apiKey", &key)])).await;
    failure(&r, 400, "INVALID_JSON");
    assert!(t.sender.messages().is_empty());
}
