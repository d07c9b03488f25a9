//! `handle` driven by the API Gateway v2 events in `events/account-me/`.

use nambari_core::testing;
use nambari_core::testing::calls::account;
use nambari_http::testing::{call, event, failure, sign_up, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";
const DEVICE: &str = "android-uuid-abc123";

#[tokio::test]
async fn the_profile_shows_the_phone_names_tier_sign_in_methods_and_onboarding_flags() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Your account");
    assert_eq!(
        *data,
        json!({
            "id": user.user_id,
            "phoneNumber": PHONE,
            "countryCode": "TZ",
            "maskedPhone": "••• ••• ••50",
            "firstName": "Asha",
            "lastName": "Mwangi",
            "birthDate": "1995-06-15",
            "accountTier": "FULL",
            "username": null,
            "email": null,
            "emailVerified": false,
            "bio": null,
            "interests": [],
            "profilePic": null,
            "authMethods": {"passwordless": true, "password": false, "google": false, "apple": false, "pin": false},
            "onboarding": {"primaryComplete": true, "username": false, "email": false,
                           "profilePic": false, "interests": false, "bio": false},
            "createdAt": "2026-04-03T10:30:45",
        })
    );
}

#[tokio::test]
async fn the_access_token_of_a_logged_out_session_is_refused_before_it_expires() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    account::logout(&t.app, Some(&user.access_token)).await.unwrap();
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    let t = testing::app();
    let user = sign_up(&t, PHONE, DEVICE).await;
    t.clock.advance(3600);
    let r = call(handle, &t, event(KRATE, "ok", &[("accessToken", &user.access_token)])).await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn without_a_token_it_is_unauthorized_and_a_garbage_token_is_invalid() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "no-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED");
    let r = call(handle, &t, event(KRATE, "garbage-token", &[])).await;
    failure(&r, 401, "INVALID_TOKEN");
}
