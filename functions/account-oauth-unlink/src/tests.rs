//! `handle` driven by the API Gateway v2 events in `events/account-oauth-unlink/`.

use nambari_core::base::ids::UserId;
use nambari_core::model::keys::user_key;
use nambari_core::model::records::User;
use nambari_core::testing::calls::auth;
use nambari_core::testing::calls::oauth::{self, OAuthLoginInput};
use nambari_core::testing::{TestApp, app_with_fake_providers, link_google};
use nambari_http::testing::{SignedUp, call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const OTHER_PHONE: &str = "+255745051251";
const DEVICE: &str = "android-uuid-abc123";
const GOOGLE_SUB: &str = "108234567890123456789";

/// A signed-up user on `phone` with Google ([`GOOGLE_SUB`]) linked.
async fn user_with_google(t: &TestApp, phone: &str) -> SignedUp {
    let user = sign_up(t, phone, DEVICE).await;
    link_google(&t.app, &user.access_token, GOOGLE_SUB).await.unwrap();
    user
}

async fn stored_user(t: &TestApp, id: &str) -> User {
    let key = user_key(&UserId::parse(id).unwrap());
    t.app.db.get::<User>(&key, t.app.now()).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_linked_google_account_is_unlinked_and_can_no_longer_sign_in() {
    let (t, _) = app_with_fake_providers();
    let user = user_with_google(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Provider unlinked");
    assert_eq!(
        *data,
        json!({"provider": "GOOGLE", "linked": false,
               "authMethods": {"passwordless": true, "password": false, "google": false, "apple": false, "pin": false}})
    );
    let stored = stored_user(&t, &user.user_id).await;
    assert!(!stored.google);
    assert_eq!(stored.google_sub, None);
    // The subject is free for another account now.
    let other = sign_up(&t, OTHER_PHONE, DEVICE).await;
    assert!(link_google(&t.app, &other.access_token, GOOGLE_SUB).await.is_ok());

    let check = auth::check(&t.app, Some(PHONE), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token;
    let id_token = format!("good:{GOOGLE_SUB}");
    let login = oauth::login(
        &t.app,
        OAuthLoginInput {
            check_token: Some(&check),
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
    .await;
    assert_eq!(login.err().map(|e| e.code()), Some("OAUTH_NOT_LINKED"));

    let again = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&again, 403, "OAUTH_NOT_LINKED");
}

#[tokio::test]
async fn a_provider_that_is_not_linked_cannot_be_unlinked() {
    let (t, _) = app_with_fake_providers();
    let user = user_with_google(&t, PHONE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "apple", &[("accessToken", &user.access_token)]),
    )
    .await;
    failure(&r, 403, "OAUTH_NOT_LINKED");
    assert!(stored_user(&t, &user.user_id).await.google, "Google stays linked");
}

#[tokio::test]
async fn an_unknown_provider_is_a_422_naming_it() {
    let (t, _) = app_with_fake_providers();
    let user = user_with_google(&t, PHONE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "bogus-provider", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["provider"]);
}

#[tokio::test]
async fn without_an_access_token_nothing_is_unlinked() {
    let (t, _) = app_with_fake_providers();
    let user = user_with_google(&t, PHONE).await;
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    assert!(stored_user(&t, &user.user_id).await.google);
}
