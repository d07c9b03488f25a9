//! `handle` driven by the API Gateway v2 events in `events/account-username/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::account;
use nambari_core::testing::calls::auth::AccessBody;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const OTHER_PHONE: &str = "+255745051251";
const DEVICE: &str = "android-uuid-abc123";
/// `ok.json`'s `Asha.Mwangi`, as stored.
const USERNAME: &str = "asha.mwangi";

async fn username_of(t: &TestApp, access_token: &str) -> Option<String> {
    account::me(&t.app, Some(access_token)).await.unwrap().username
}

#[tokio::test]
async fn a_username_is_claimed_in_lowercase_and_a_new_access_token_carries_the_flag() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Username set");
    assert_eq!(
        data["onboarding"],
        json!({"primaryComplete": true, "username": true, "email": false,
               "profilePic": false, "interests": false, "bio": false})
    );
    let now = t.app.now();
    let new = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, data["accessToken"].as_str().unwrap(), now)
        .unwrap();
    let old = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, &user.access_token, now)
        .unwrap();
    assert!(new.body.onb.username);
    assert_eq!(new.sub, user.user_id);
    assert_eq!(new.body.sid, old.body.sid, "same session");
    assert_eq!(username_of(&t, &user.access_token).await.as_deref(), Some(USERNAME));
}

#[tokio::test]
async fn a_username_another_user_has_is_a_conflict_whatever_its_case() {
    let t = testing::app();
    let other = sign_up(&t, OTHER_PHONE, DEVICE).await;
    account::set_username(&t.app, Some(&other.access_token), Some(USERNAME))
        .await
        .unwrap();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 409, "CONFLICT");
    assert_eq!(username_of(&t, &user.access_token).await, None);
}

#[tokio::test]
async fn changing_a_username_frees_the_old_one() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    success(&r, None);
    account::set_username(&t.app, Some(&user.access_token), Some("asha"))
        .await
        .unwrap();

    let other = sign_up(&t, OTHER_PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &other.access_token)])).await;
    success(&r, None);
    assert_eq!(username_of(&t, &other.access_token).await.as_deref(), Some(USERNAME));
    assert_eq!(username_of(&t, &user.access_token).await.as_deref(), Some("asha"));
}

#[tokio::test]
async fn a_username_outside_the_alphabet_is_a_422_naming_it() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "bad-username", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["username"]);
}

#[tokio::test]
async fn without_an_access_token_it_is_unauthorized() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
}
