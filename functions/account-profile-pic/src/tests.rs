//! `handle` driven by the API Gateway v2 events in `events/account-profile-pic/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::account;
use nambari_core::testing::calls::auth::AccessBody;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";

async fn picture_of(t: &TestApp, access_token: &str) -> Option<String> {
    account::me(&t.app, Some(access_token)).await.unwrap().profile_pic
}

fn claims_of(t: &TestApp, access_token: &str) -> AccessBody {
    t.app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, access_token, t.app.now())
        .unwrap()
        .body
}

#[tokio::test]
async fn an_https_picture_is_saved_and_a_new_access_token_carries_the_flag() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Profile picture saved");
    assert_eq!(data["onboarding"]["profilePic"], true);
    let new = claims_of(&t, data["accessToken"].as_str().unwrap());
    assert!(new.onb.profile_pic);
    assert_eq!(new.sid, claims_of(&t, &user.access_token).sid, "same session");
    assert_eq!(
        picture_of(&t, &user.access_token).await.as_deref(),
        Some("https://cdn.nambari.example/u/asha.jpg")
    );
}

#[tokio::test]
async fn a_null_picture_clears_it() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    success(&r, None);
    let r = call(
        handle,
        &t,
        event(KRATE, "clear", &[("accessToken", &user.access_token)]),
    )
    .await;
    let data = success(&r, None);
    assert_eq!(data["onboarding"]["profilePic"], false);
    assert!(!claims_of(&t, data["accessToken"].as_str().unwrap()).onb.profile_pic);
    assert_eq!(picture_of(&t, &user.access_token).await, None);
}

#[tokio::test]
async fn a_picture_that_is_not_https_is_a_422_naming_it() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "not-https", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["profilePic"]);
    assert_eq!(picture_of(&t, &user.access_token).await, None);
}

#[tokio::test]
async fn without_an_access_token_it_is_unauthorized() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
}
