//! `handle` driven by the API Gateway v2 events in `events/users-find/`.

use std::sync::Arc;

use nambari_core::base::config::Settings;
use nambari_core::base::otp::Pepper;
use nambari_core::base::phone::Region;
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::secrets::Live;
use nambari_core::services::apikeys;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
/// The number of `ok.json`.
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";

fn app_with(settings: Settings) -> TestApp {
    let mut t = testing::app_with(Arc::new(MemoryTable::new()), settings);
    t.edit(|app| app.with_api_key_pepper(Arc::new(Live::new(Pepper::new(vec![7; 32]).unwrap()))));
    t
}

fn app() -> TestApp {
    app_with(testing::settings())
}

/// A key with `scopes` (empty: every scope).
async fn new_key(t: &TestApp, name: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let k = apikeys::create(&t.app, name, &scopes, false).await.unwrap();
    apikeys::reveal(&k).to_owned()
}

#[tokio::test]
async fn an_e164_number_gives_its_user_object() {
    let t = app();
    sign_up(&t, "+231881158457", DEVICE).await;
    let user = sign_up(&t, PHONE, DEVICE).await;
    let key = new_key(&t, "payments", &["users:read"]).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &key)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "User found");
    assert_eq!(
        *data,
        json!({"id": user.user_id, "phone_number": PHONE, "country_code": "TZ"})
    );
}

#[tokio::test]
async fn a_number_nobody_has_is_not_found() {
    let t = app();
    sign_up(&t, PHONE, DEVICE).await;
    let key = new_key(&t, "payments", &[]).await;
    let r = call(handle, &t, event(KRATE, "unknown", &[("apiKey", &key)])).await;
    failure(&r, 404, "NOT_FOUND");
}

#[tokio::test]
async fn a_national_format_is_refused_even_with_a_default_region_and_a_missing_number_is_a_422() {
    let mut settings = testing::settings();
    settings.default_region = Some(Region::parse("TZ").unwrap());
    let t = app_with(settings);
    sign_up(&t, PHONE, DEVICE).await;
    let key = new_key(&t, "payments", &[]).await;
    let r = call(handle, &t, event(KRATE, "national-format", &[("apiKey", &key)])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["phone_number"]);
    let r = call(handle, &t, event(KRATE, "missing-phone", &[("apiKey", &key)])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["phone_number"]);
}

#[tokio::test]
async fn a_missing_or_revoked_key_is_unauthorized_and_a_key_without_users_read_is_forbidden() {
    let t = app();
    sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "no-key", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    let otp_only = new_key(&t, "otp", &["otp"]).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("apiKey", &otp_only)])).await;
    failure(&r, 403, "INSUFFICIENT_SCOPE");
    let revoked = apikeys::create(&t.app, "old", &["users:read".into()], false)
        .await
        .unwrap();
    let with_revoked = [("apiKey", apikeys::reveal(&revoked))];
    success(&call(handle, &t, event(KRATE, "ok", &with_revoked)).await, None);
    apikeys::revoke(&t.app, &revoked.record.key_id).await.unwrap();
    let r = call(handle, &t, event(KRATE, "ok", &with_revoked)).await;
    failure(&r, 401, "UNAUTHORIZED");
}
