//! `handle` driven by the API Gateway v2 events in `events/account-oauth-link/`.
//!
//! The idToken check is a fake here (the JWKS verifier is tested in
//! `nambari-oauth`): it takes `good:<sub>` as the provider's subject `<sub>`.

use nambari_core::base::values::Provider;
use nambari_core::testing::calls::account;
use nambari_core::testing::calls::auth;
use nambari_core::testing::calls::credentials;
use nambari_core::testing::calls::oauth::{self, OAuthLoginInput};
use nambari_core::testing::calls::password::SignIn;
use nambari_core::testing::{TestApp, app_with_fake_providers, link_google};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const OTHER_PHONE: &str = "+255745051251";
const DEVICE: &str = "android-uuid-abc123";
/// The Google subject of `ok.json`'s idToken.
const GOOGLE_SUB: &str = "108234567890123456789";

async fn nonce(t: &TestApp, user: &SignedUp) -> String {
    oauth::nonce(&t.app, Some(&user.access_token)).await.unwrap().nonce
}

async fn link(t: &TestApp, fixture: &str, access_token: &str, nonce: &str) -> nambari_http::testing::Reply {
    call(
        handle,
        t,
        event(KRATE, fixture, &[("accessToken", access_token), ("nonce", nonce)]),
    )
    .await
}

#[tokio::test]
async fn a_google_account_is_linked_with_an_issued_nonce_shows_in_the_auth_methods_and_signs_in() {
    let (t, fake) = app_with_fake_providers();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let n = nonce(&t, &user).await;
    let r = link(&t, "ok", &user.access_token, &n).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Provider linked");
    assert_eq!(
        *data,
        json!({"provider": "GOOGLE", "linked": true,
               "authMethods": {"passwordless": true, "password": false, "google": true, "apple": false, "pin": false}})
    );
    assert_eq!(
        fake.calls.lock().unwrap().last(),
        Some(&(Provider::Google, n.clone())),
        "the issued nonce is what the idToken must carry"
    );
    let me = account::me(&t.app, Some(&user.access_token)).await.unwrap();
    assert!(me.auth_methods.google);
    // The nonce is spent.
    let r = link(&t, "ok", &user.access_token, &n).await;
    failure(&r, 403, "INVALID_TOKEN");

    // The linked account now signs in on the known device.
    let check = auth::check(&t.app, Some(PHONE), Some(DEVICE), None).await.unwrap();
    let id_token = format!("good:{GOOGLE_SUB}");
    let signed_in = oauth::login(
        &t.app,
        OAuthLoginInput {
            check_token: Some(&check.check_token),
            provider: Some("GOOGLE"),
            id_token: Some(&id_token),
            device_id: Some(DEVICE),
            device_token: Some(&user.device_token),
            device_name: None,
            platform: None,
            locale: "en".into(),
            ip: None,
        },
    )
    .await
    .unwrap();
    let SignIn::SignedIn { user: signed_in, .. } = signed_in else {
        panic!("a known device signs in");
    };
    assert_eq!(signed_in.id.as_str(), user.user_id);
    assert_eq!(
        fake.calls.lock().unwrap().last(),
        Some(&(Provider::Google, check.oauth_nonce)),
        "sign-in checks the checkToken's nonce"
    );

    // Linking the same account again, with a new nonce, changes nothing.
    let n = nonce(&t, &user).await;
    let r = link(&t, "ok", &user.access_token, &n).await;
    success(&r, None);
}

#[tokio::test]
async fn a_nonce_issued_to_someone_else_or_never_issued_links_nothing() {
    let (t, _) = app_with_fake_providers();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let other = sign_up(&t, OTHER_PHONE, DEVICE).await;
    let theirs = nonce(&t, &other).await;
    for n in [theirs.as_str(), "never-issued"] {
        let r = link(&t, "ok", &user.access_token, n).await;
        failure(&r, 403, "INVALID_TOKEN");
    }
    let me = account::me(&t.app, Some(&user.access_token)).await.unwrap();
    assert!(!me.auth_methods.google);
}

#[tokio::test]
async fn past_the_fresh_sign_in_window_linking_needs_the_pin() {
    let (t, _) = app_with_fake_providers();
    let user = sign_up(&t, PHONE, DEVICE).await;
    credentials::set_pin(&t.app, Some(&user.access_token), Some("1357"), None)
        .await
        .unwrap();
    t.clock.advance(601);
    let n = nonce(&t, &user).await;
    let r = link(&t, "ok", &user.access_token, &n).await;
    failure(&r, 403, "FACTOR_REQUIRED");
    let id_token = format!("good:{GOOGLE_SUB}");
    for (pin, code) in [("9999", "INVALID_CREDENTIALS"), ("1357", "")] {
        let linked = oauth::link(
            &t.app,
            Some(&user.access_token),
            oauth::LinkInput {
                provider: Some("GOOGLE"),
                id_token: Some(&id_token),
                nonce: Some(&n),
                pin: Some(pin),
            },
        )
        .await;
        assert_eq!(linked.err().map(|e| e.code()).unwrap_or(""), code, "PIN {pin}");
    }
}

#[tokio::test]
async fn a_google_account_linked_to_another_user_is_a_conflict() {
    let (t, _) = app_with_fake_providers();
    let owner = sign_up(&t, OTHER_PHONE, DEVICE).await;
    link_google(&t.app, &owner.access_token, GOOGLE_SUB).await.unwrap();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let n = nonce(&t, &user).await;
    let r = link(&t, "ok", &user.access_token, &n).await;
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
    let (t, _) = app_with_fake_providers();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let n = nonce(&t, &user).await;
    let r = link(&t, "bad-id-token", &user.access_token, &n).await;
    failure(&r, 403, "INVALID_TOKEN");
    let me = account::me(&t.app, Some(&user.access_token)).await.unwrap();
    assert!(!me.auth_methods.google);
}

#[tokio::test]
async fn a_body_without_fields_names_each_and_no_token_is_unauthorized() {
    let (t, fake) = app_with_fake_providers();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "missing-fields", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["idToken", "nonce", "provider"]);
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert!(fake.calls.lock().unwrap().is_empty(), "the idToken is not even checked");
}
