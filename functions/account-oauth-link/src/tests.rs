//! `handle` driven by the API Gateway v2 events in `events/account-oauth-link/`.
//!
//! The idToken check is a fake here (the JWKS verifier is tested in
//! `nambari-oauth`): it takes `good:<sub>` as the provider's subject `<sub>`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nambari_core::account;
use nambari_core::auth;
use nambari_core::oauth::{self, IdTokenClaims, IdTokenError, IdTokenVerifier, OAuthLoginInput, Provider};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const OTHER_PHONE: &str = "+255745051251";
const DEVICE: &str = "android-uuid-abc123";
/// The Google subject of `ok.json`'s idToken.
const GOOGLE_SUB: &str = "108234567890123456789";

/// Accepts the idToken `good:<sub>` as subject `<sub>` and refuses anything
/// else; records the provider and nonce of every call.
#[derive(Default)]
struct FakeProvider {
    calls: Mutex<Vec<(Provider, Option<String>)>>,
}

#[async_trait]
impl IdTokenVerifier for FakeProvider {
    async fn verify(
        &self,
        provider: Provider,
        id_token: &str,
        nonce: Option<&str>,
        _now: i64,
    ) -> Result<IdTokenClaims, IdTokenError> {
        self.calls.lock().unwrap().push((provider, nonce.map(str::to_owned)));
        match id_token.strip_prefix("good:") {
            Some(sub) if !sub.is_empty() => Ok(IdTokenClaims {
                sub: sub.to_owned(),
                email: None,
            }),
            _ => Err(IdTokenError::Invalid("not a good:<sub> token")),
        }
    }
}

/// The test App with [`FakeProvider`] as its idToken verifier.
fn app() -> (TestApp, Arc<FakeProvider>) {
    let mut t = testing::app();
    let fake = Arc::new(FakeProvider::default());
    Arc::get_mut(&mut t.app).expect("the only handle on the App").oauth = Some(fake.clone());
    (t, fake)
}

#[tokio::test]
async fn a_google_account_is_linked_shows_in_the_auth_methods_and_signs_in() {
    let (t, fake) = app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Provider linked");
    assert_eq!(
        *data,
        json!({"provider": "GOOGLE", "linked": true,
               "authMethods": {"passwordless": true, "password": false, "google": true, "apple": false, "pin": false}})
    );
    assert_eq!(
        fake.calls.lock().unwrap().last(),
        Some(&(Provider::Google, Some("n-0S6_WzA2Mj".to_owned()))),
        "the nonce is passed to the provider check"
    );
    let me = account::me(&t.app, Some(&user.access_token)).await.unwrap();
    assert!(me.auth_methods.google);

    // The linked account now signs in.
    let check = auth::check(&t.app, Some(PHONE), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token;
    let id_token = format!("good:{GOOGLE_SUB}");
    let (signed_in, _) = oauth::login(
        &t.app,
        OAuthLoginInput {
            check_token: Some(&check),
            provider: Some("GOOGLE"),
            id_token: Some(&id_token),
            nonce: None,
            device_id: Some(DEVICE),
            device_name: None,
            platform: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(signed_in.id.as_str(), user.user_id);

    // Linking the same account again changes nothing.
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    success(&r, None);
}

#[tokio::test]
async fn a_google_account_linked_to_another_user_is_a_conflict() {
    let (t, _) = app();
    let owner = sign_up(&t, OTHER_PHONE, DEVICE).await;
    let id_token = format!("good:{GOOGLE_SUB}");
    oauth::link(&t.app, Some(&owner.access_token), Some("GOOGLE"), Some(&id_token), None)
        .await
        .unwrap();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 409, "CONFLICT");
    assert_eq!(
        r.body["message"],
        "This account of the provider is linked to another user"
    );
    let me = account::me(&t.app, Some(&user.access_token)).await.unwrap();
    assert!(!me.auth_methods.google);
}

#[tokio::test]
async fn an_id_token_the_provider_refuses_links_nothing() {
    let (t, _) = app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "bad-id-token", &[("accessToken", &user.access_token)]),
    )
    .await;
    failure(&r, 403, "INVALID_TOKEN");
    let me = account::me(&t.app, Some(&user.access_token)).await.unwrap();
    assert!(!me.auth_methods.google);
}

#[tokio::test]
async fn without_an_access_token_nothing_is_linked() {
    let (t, fake) = app();
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert!(fake.calls.lock().unwrap().is_empty(), "the idToken is not even checked");
}

#[tokio::test]
async fn a_body_without_fields_names_each_one() {
    let (t, _) = app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "missing-fields", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["idToken", "provider"]);
}
