//! `handle` driven by the API Gateway v2 events in `events/auth-login-oauth/`.
//!
//! The idToken check is a fake here (the JWKS verifier is tested in
//! `nambari-oauth`): it takes `good:<sub>` as the provider's subject `<sub>`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nambari_core::auth::{self, AccessBody};
use nambari_core::oauth::{self, IdTokenClaims, IdTokenError, IdTokenVerifier, Provider};
use nambari_core::testing::{self, TestApp};
use nambari_core::tokens::TokenKind;
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
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

/// A signed-up user with Google ([`GOOGLE_SUB`]) linked.
async fn user_with_google(t: &TestApp) -> SignedUp {
    let user = sign_up(t, PHONE, DEVICE).await;
    let id_token = format!("good:{GOOGLE_SUB}");
    oauth::link(&t.app, Some(&user.access_token), Some("GOOGLE"), Some(&id_token), None)
        .await
        .unwrap();
    user
}

async fn check_token(t: &TestApp, phone: &str) -> String {
    auth::check(&t.app, Some(phone), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token
}

#[tokio::test]
async fn a_linked_google_account_signs_in_echoes_the_state_and_uses_up_the_check_token() {
    let (t, fake) = app();
    let user = user_with_google(&t).await;
    let check = check_token(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Login successful");
    assert_eq!(data["state"], "optional-state-string");
    assert_eq!(data["expiresIn"], 3600);
    assert_eq!(data["refreshToken"].as_str().map(str::len), Some(43));
    assert_eq!(data["onboarding"]["primaryComplete"], true);
    let claims = t
        .app
        .keys
        .verify::<AccessBody>(TokenKind::Access, data["accessToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(claims.sub, user.user_id);
    assert_eq!(claims.body.amr, ["oauth_google"]);
    assert_eq!(
        fake.calls.lock().unwrap().last(),
        Some(&(Provider::Google, Some("n-0S6_WzA2Mj".to_owned()))),
        "the nonce is passed to the provider check"
    );

    let again = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    failure(&again, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn a_provider_that_is_not_linked_cannot_sign_in() {
    let (t, _) = app();
    user_with_google(&t).await;
    let check = check_token(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "apple", &[("checkToken", &check)])).await;
    failure(&r, 403, "OAUTH_NOT_LINKED");

    let stranger = check_token(&t, "+255745051299").await;
    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &stranger)])).await;
    failure(&r, 403, "OAUTH_NOT_LINKED");
}

#[tokio::test]
async fn an_id_token_the_provider_refuses_or_of_another_account_is_invalid_and_keeps_the_check_token() {
    let (t, _) = app();
    user_with_google(&t).await;
    let check = check_token(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "bad-id-token", &[("checkToken", &check)])).await;
    failure(&r, 403, "INVALID_TOKEN");
    let r = call(handle, &t, event(KRATE, "other-account", &[("checkToken", &check)])).await;
    failure(&r, 403, "INVALID_TOKEN");

    let r = call(handle, &t, event(KRATE, "ok", &[("checkToken", &check)])).await;
    success(&r, None);
}

#[tokio::test]
async fn a_body_without_fields_names_each_one() {
    let (t, _) = app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(
        failure(&r, 422, "VALIDATION_ERROR"),
        ["checkToken", "deviceId", "idToken", "provider"]
    );
}
