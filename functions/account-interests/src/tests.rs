//! `handle` driven by the API Gateway v2 events in `events/account-interests/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::account;
use nambari_core::testing::calls::auth::AccessBody;
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, sign_up, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";

async fn interests_of(t: &TestApp, access_token: &str) -> Vec<String> {
    account::me(&t.app, Some(access_token)).await.unwrap().interests
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
async fn interests_are_saved_once_each_and_a_new_access_token_carries_the_flag() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Interests saved");
    assert_eq!(data["onboarding"]["interests"], true);
    assert_eq!(data["onboarding"]["primaryComplete"], true);
    let new = claims_of(&t, data["accessToken"].as_str().unwrap());
    assert!(new.onb.interests);
    assert_eq!(new.sid, claims_of(&t, &user.access_token).sid, "same session");
    assert_eq!(
        interests_of(&t, &user.access_token).await,
        ["Music", "Football", "Tech"]
    );
}

#[tokio::test]
async fn an_empty_list_clears_them() {
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
    assert_eq!(data["onboarding"]["interests"], false);
    assert!(!claims_of(&t, data["accessToken"].as_str().unwrap()).onb.interests);
    assert!(interests_of(&t, &user.access_token).await.is_empty());
}

#[tokio::test]
async fn interests_that_are_not_a_list_are_a_422_naming_them() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "not-a-list", &[("accessToken", &user.access_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["interests"]);
    assert!(interests_of(&t, &user.access_token).await.is_empty());
}

#[tokio::test]
async fn without_an_access_token_it_is_unauthorized() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
}
