//! `handle` driven by the API Gateway v2 events in `events/account-oauth-nonce/`.

use std::sync::Arc;

use async_trait::async_trait;
use nambari_core::base::values::Provider;
use nambari_core::model::keys::nonce_key;
use nambari_core::ports::id_tokens::{IdTokenClaims, IdTokenError, IdTokenVerifier};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";

/// Refuses every idToken: these tests only ask for nonces.
struct NoTokens;

#[async_trait]
impl IdTokenVerifier for NoTokens {
    async fn verify(&self, _: Provider, _: &str, _: &str, _: i64) -> Result<IdTokenClaims, IdTokenError> {
        Err(IdTokenError::Invalid("no tokens here"))
    }
}

fn app_with_google() -> TestApp {
    let mut settings = testing::settings();
    settings.oauth.google_client_ids = vec!["client-1".into()];
    let mut t = testing::app_with(Arc::new(nambari_core::ports::memory::MemoryTable::new()), settings);
    t.edit(|app| app.with_oauth(Some(Arc::new(NoTokens))));
    t
}

#[tokio::test]
async fn a_nonce_is_issued_to_the_caller_and_stored_for_ten_minutes() {
    let t = app_with_google();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(data["expiresIn"], 600);
    let nonce = r.data_str("nonce");
    assert_eq!(nonce.len(), 22);
    let stored = t
        .app
        .db
        .get_item(&nonce_key(&nonce), t.app.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored["user_id"], user.user_id.as_str());
    t.clock.advance(600);
    assert!(
        t.app
            .db
            .get_item(&nonce_key(&nonce), t.app.now())
            .await
            .unwrap()
            .is_none()
    );
    // Each call issues another.
    let again = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    assert_ne!(again.data_str("nonce"), nonce);
}

#[tokio::test]
async fn without_a_provider_it_is_feature_disabled_and_without_a_token_unauthorized() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 503, "FEATURE_DISABLED");
    assert!(r.body["message"].as_str().unwrap().contains("GOOGLE_CLIENT_IDS"));
    let t = app_with_google();
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
}
