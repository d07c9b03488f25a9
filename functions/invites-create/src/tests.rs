//! `handle` driven by the API Gateway v2 events in `events/invites-create/`.

use std::sync::Arc;

use nambari_core::base::channel::Pipe;
use nambari_core::base::otp::Pepper;
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::secrets::Live;
use nambari_core::services::apikeys;
use nambari_core::testing::calls::invites;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
/// The number of `ok.json` and `sandbox.json`: not a user yet.
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";

fn app() -> TestApp {
    let mut settings = testing::settings();
    settings.invite_url_template = Some("https://app.example.com/claim/{invite_id}".into());
    let mut t = testing::app_with(Arc::new(MemoryTable::new()), settings);
    t.edit(|app| app.with_api_key_pepper(Arc::new(Live::new(Pepper::new(vec![7; 32]).unwrap()))));
    t
}

/// A key with `scopes` (empty: every scope); `test`: `nmb_test_`.
async fn new_key(t: &TestApp, name: &str, scopes: &[&str], test: bool) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let k = apikeys::create(&t.app, name, &scopes, test).await.unwrap();
    apikeys::reveal(&k).to_owned()
}

fn invites_sent(t: &TestApp) -> Vec<(Pipe, String, String)> {
    t.sender
        .invites
        .lock()
        .unwrap()
        .iter()
        .map(|m| (m.pipe, m.to.clone(), m.link.clone()))
        .collect()
}

#[tokio::test]
async fn an_invite_sends_a_whatsapp_claim_link_and_is_kept_with_its_metadata() {
    let t = app();
    let key = new_key(&t, "remit", &["invites"], false).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Invite sent");
    let invite_id = r.data_str("invite_id");
    assert!(invite_id.starts_with("inv_"), "{invite_id}");
    let claim_url = format!("https://app.example.com/claim/{invite_id}");
    assert_eq!(
        *data,
        json!({
            "invite_id": invite_id,
            "phone_number": PHONE,
            "claim_url": claim_url,
            "delivered_via": "WHATSAPP",
            "expires_at": "2026-05-03T10:30:45",
        })
    );
    assert_eq!(
        invites_sent(&t),
        [(Pipe::Whatsapp, PHONE.to_owned(), claim_url.clone())]
    );
    assert!(t.sender.messages().is_empty(), "no code is sent");
    let pending = invites::pending(&t.app, PHONE).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].invite_id, invite_id);
    assert_eq!(pending[0].country_code, "TZ");
    assert_eq!(json!(pending[0].metadata), json!({"transfer": "t-991", "amount": 25}));
}

#[tokio::test]
async fn when_whatsapp_fails_the_link_goes_by_sms_an_undelivered_invite_is_not_kept_and_a_repeat_sends_nothing() {
    // Nothing delivered: nothing kept.
    let t = app();
    let key = new_key(&t, "remit", &[], false).await;
    t.sender.fail(Pipe::Whatsapp);
    t.sender.fail(Pipe::Sms);
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key)])).await;
    failure(&r, 502, "DELIVERY_FAILED");
    assert!(
        invites::pending(&t.app, PHONE).await.unwrap().is_empty(),
        "an undelivered invite is removed"
    );

    let t = app();
    let key = new_key(&t, "remit", &[], false).await;
    t.sender.fail(Pipe::Whatsapp);
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key)])).await;
    assert_eq!(success(&r, None)["delivered_via"], "SMS");
    let delivered = r.data_str("invite_id");
    assert_eq!(
        invites_sent(&t),
        [(Pipe::Sms, PHONE.to_owned(), r.data_str("claim_url"))]
    );
    // A repeat finds the delivered invite: nothing is sent again, and the
    // invite the number did receive still stands.
    t.sender.fail(Pipe::Sms);
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key)])).await;
    assert_eq!(success(&r, None)["invite_id"], delivered.as_str());
    assert_eq!(r.body["data"]["delivered_via"], "SMS");
    assert_eq!(invites_sent(&t).len(), 1, "one message");
    let pending: Vec<String> = invites::pending(&t.app, PHONE)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.invite_id)
        .collect();
    assert_eq!(pending, [delivered], "the invite the number did receive still stands");
}

#[tokio::test]
async fn sandbox_invites_send_nothing_and_a_number_that_is_a_user_is_a_conflict() {
    let t = app();
    let key = new_key(&t, "remit", &[], false).await;
    let r = call(handle, &t, event(KRATE, "sandbox", &[("apiKey", &key)])).await;
    assert_eq!(success(&r, None)["delivered_via"], "SANDBOX");
    // A test key is sandboxed even without `sandbox_mode`.
    let test_key = new_key(&t, "remit-test", &[], true).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &test_key)])).await;
    assert_eq!(success(&r, None)["delivered_via"], "SANDBOX");
    assert!(invites_sent(&t).is_empty(), "sandbox sends nothing");
    assert_eq!(invites::pending(&t.app, PHONE).await.unwrap().len(), 2, "one per key");

    sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key)])).await;
    failure(&r, 409, "CONFLICT");
    assert!(invites_sent(&t).is_empty());
}

#[tokio::test]
async fn a_missing_or_revoked_key_is_unauthorized_and_a_key_without_invites_is_forbidden() {
    let t = app();
    let r = call(handle, &t, event(KRATE, "no-key", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    let otp_only = new_key(&t, "otp", &["otp", "users:read"], false).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &otp_only)])).await;
    failure(&r, 403, "INSUFFICIENT_SCOPE");
    let revoked = apikeys::create(&t.app, "old", &[], false).await.unwrap();
    apikeys::revoke(&t.app, &revoked.record.key_id).await.unwrap();
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", apikeys::reveal(&revoked))])).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert!(invites_sent(&t).is_empty());
    assert!(invites::pending(&t.app, PHONE).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_national_number_bad_metadata_or_no_number_is_a_422_naming_the_field() {
    let t = app();
    let key = new_key(&t, "remit", &[], false).await;
    for (fixture, field) in [
        ("bad-phone", "phone_number"),
        ("bad-metadata", "metadata"),
        ("missing-phone", "phone_number"),
    ] {
        let r = call(handle, &t, event(KRATE, fixture, &[("apiKey", &key)])).await;
        assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), [field], "{fixture}");
    }
    assert!(invites_sent(&t).is_empty());
    assert!(invites::pending(&t.app, PHONE).await.unwrap().is_empty());
}
