//! `handle` driven by the API Gateway v2 events in `events/auth-login-oauth/`.
//!
//! The idToken check is a fake here (the JWKS verifier is tested in
//! `nambari-oauth`): it takes `good:<sub>` as the provider's subject `<sub>`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::base::values::Provider;
use nambari_core::testing::calls::auth::{self, AccessBody};
use nambari_core::testing::{TestApp, app_with_fake_providers, link_google};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";
/// The Google subject of `ok.json`'s idToken.
const GOOGLE_SUB: &str = "108234567890123456789";

/// A signed-up user with Google ([`GOOGLE_SUB`]) linked.
async fn user_with_google(t: &TestApp) -> SignedUp {
    let user = sign_up(t, PHONE, DEVICE).await;
    link_google(&t.app, &user.access_token, GOOGLE_SUB).await.unwrap();
    user
}

/// A checkToken for `phone` on the fixtures' device, and its nonce.
async fn check(t: &TestApp, phone: &str) -> (String, String) {
    let c = auth::check(&t.app, Some(phone), Some(DEVICE), None).await.unwrap();
    (c.check_token, c.oauth_nonce)
}

#[tokio::test]
async fn a_linked_google_account_signs_in_on_a_known_device_echoes_the_state_and_uses_up_the_check_token() {
    let (t, fake) = app_with_fake_providers();
    let user = user_with_google(&t).await;
    let (ct, nonce) = check(&t, PHONE).await;
    let vars = [("checkToken", ct.as_str()), ("deviceToken", user.device_token.as_str())];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Login successful");
    assert_eq!(data["state"], "optional-state-string");
    assert_eq!(data["expiresIn"], 3600);
    assert_eq!(data["refreshToken"].as_str().map(str::len), Some(43));
    assert_eq!(data["deviceToken"].as_str().map(str::len), Some(43));
    assert_ne!(data["deviceToken"], user.device_token.as_str(), "a new deviceToken");
    assert_eq!(data["onboarding"]["primaryComplete"], true);
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, data["accessToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(claims.sub, user.user_id);
    assert_eq!(claims.body.amr, ["oauth_google"]);
    assert_eq!(
        fake.calls.lock().unwrap().last(),
        Some(&(Provider::Google, nonce)),
        "the idToken must carry the checkToken's nonce"
    );

    let again = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&again, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn on_a_device_the_account_does_not_know_a_code_goes_to_the_phone() {
    let (t, _) = app_with_fake_providers();
    user_with_google(&t).await;
    let (ct, _) = check(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "new-device", &[("checkToken", &ct)])).await;
    let data = success(&r, Some("VERIFY_DEVICE"));
    assert_eq!(r.body["message"], "Device verification required");
    assert_eq!(data["accessToken"], serde_json::Value::Null);
    assert_eq!(data["refreshToken"], serde_json::Value::Null);
    assert_eq!(data["maskedDestination"], "••• ••• ••50");
    assert_eq!(data["state"], "optional-state-string");
    assert_eq!(t.sender.last_code_to(PHONE).as_deref(), data["sandboxOtp"].as_str());
    let dvt = r.data_str("deviceVerificationToken");
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<auth::DeviceVerificationBody>(TokenKind::DeviceVerification, &dvt, t.app.now())
        .unwrap();
    assert_eq!(claims.body.first.as_deref(), Some("oauth_google"));
}

#[tokio::test]
async fn a_provider_that_is_not_linked_cannot_sign_in() {
    let (t, _) = app_with_fake_providers();
    let user = user_with_google(&t).await;
    let (ct, _) = check(&t, PHONE).await;
    let vars = [("checkToken", ct.as_str()), ("deviceToken", user.device_token.as_str())];
    let r = call(handle, &t, event(KRATE, "apple", &vars)).await;
    failure(&r, 403, "OAUTH_NOT_LINKED");

    let (stranger, _) = check(&t, "+255745051299").await;
    let vars = [
        ("checkToken", stranger.as_str()),
        ("deviceToken", user.device_token.as_str()),
    ];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&r, 403, "OAUTH_NOT_LINKED");
}

#[tokio::test]
async fn an_id_token_the_provider_refuses_or_of_another_account_is_invalid_and_keeps_the_check_token() {
    let (t, _) = app_with_fake_providers();
    let user = user_with_google(&t).await;
    let (ct, _) = check(&t, PHONE).await;
    let vars = [("checkToken", ct.as_str()), ("deviceToken", user.device_token.as_str())];
    let r = call(handle, &t, event(KRATE, "bad-id-token", &vars)).await;
    failure(&r, 403, "INVALID_TOKEN");
    let r = call(handle, &t, event(KRATE, "other-account", &vars)).await;
    failure(&r, 403, "INVALID_TOKEN");

    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    success(&r, None);
}

#[tokio::test]
async fn a_body_without_fields_names_each_one() {
    let (t, _) = app_with_fake_providers();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(
        failure(&r, 422, "VALIDATION_ERROR"),
        ["checkToken", "deviceId", "idToken", "provider"]
    );
}

#[tokio::test]
async fn with_no_provider_configured_it_is_feature_disabled() {
    let t = nambari_core::testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let (ct, _) = check(&t, PHONE).await;
    let vars = [("checkToken", ct.as_str()), ("deviceToken", user.device_token.as_str())];
    let r = call(handle, &t, event(KRATE, "ok", &vars)).await;
    failure(&r, 503, "FEATURE_DISABLED");
    assert!(
        r.body["message"].as_str().unwrap().contains("GOOGLE_CLIENT_IDS"),
        "{}",
        r.body
    );
}
