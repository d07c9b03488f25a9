//! `handle` driven by the API Gateway v2 events in `events/auth-token-refresh/`.

use nambari_core::base::tokens::{REFRESH_TTL, TokenKind};
use nambari_core::testing::calls::auth::{
    self, AccessBody, Onboarded, PrimaryInput, StartInput, Tokens, Verified, VerifyInput,
};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const TEST_PHONE: &str = "+15555550100";
const TEST_CODE: &str = "123456";
const DEVICE: &str = "android-uuid-abc123";

/// The whole sign-up on `platform` (check → start → verify → primary): the first tokens.
async fn sign_up(t: &TestApp, platform: &str) -> Tokens {
    let check = auth::check(&t.app, Some(TEST_PHONE), Some(DEVICE), None).await.unwrap();
    let sent = auth::start(
        &t.app,
        StartInput {
            check_token: Some(&check.check_token),
            channel: Some("SMS"),
            device_id: Some(DEVICE),
            locale: "en".into(),
            ip: None,
        },
    )
    .await
    .unwrap();
    let verified = auth::verify(
        &t.app,
        VerifyInput {
            temp_token: Some(&sent.temp_token),
            otp: Some(TEST_CODE),
            device_name: None,
            platform: Some(platform),
            ip: None,
        },
    )
    .await
    .unwrap();
    let Verified::CollectPrimary { onboarding_token, .. } = verified else {
        panic!("expected COLLECT_PRIMARY, got {verified:?}");
    };
    let onboarded = auth::onboard_primary(
        &t.app,
        PrimaryInput {
            onboarding_token: Some(&onboarding_token),
            first_name: Some("Joshua"),
            last_name: Some("Sakweli"),
            birth_date: Some("1995-06-15"),
        },
    )
    .await
    .unwrap();
    let Onboarded::Complete { tokens, .. } = onboarded else {
        panic!("expected tokens, got {onboarded:?}");
    };
    *tokens
}

fn access_claims(t: &TestApp, token: &str) -> AccessBody {
    t.app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, token, t.app.now())
        .unwrap()
        .body
}

/// Refreshes `token` through the `ok` event, expecting success: the new refresh token.
async fn refresh_ok(t: &TestApp, token: &str) -> String {
    let r = call(handle, t, event(KRATE, "ok", &[("refreshToken", token)])).await;
    success(&r, None)["refreshToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn refresh_rotates_the_pair_within_the_same_session() {
    let t = testing::app();
    let first = sign_up(&t, "ANDROID").await;
    t.clock.advance(600);
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("refreshToken", first.refresh_token.expose())]),
    )
    .await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Token refreshed");
    assert_eq!(r.body["action_time"], "2026-04-03T10:40:45");
    assert_eq!(data["expiresIn"], 3600);
    let refresh = data["refreshToken"].as_str().unwrap();
    assert_eq!(refresh.len(), 43);
    assert_ne!(refresh, first.refresh_token.expose());
    let access = data["accessToken"].as_str().unwrap();
    assert_ne!(access, first.access_token);
    let claims = access_claims(&t, access);
    assert_eq!(claims.sid, first.session.sid);
    assert_eq!(claims.phone, TEST_PHONE);
    assert!(
        r.headers.get("set-cookie").is_none(),
        "only web sessions get the cookie"
    );
}

#[tokio::test]
async fn each_new_refresh_token_refreshes_again() {
    let t = testing::app();
    let mut token = sign_up(&t, "ANDROID").await.refresh_token.expose().to_owned();
    for _ in 0..3 {
        token = refresh_ok(&t, &token).await;
    }
}

#[tokio::test]
async fn reused_refresh_token_is_a_401_token_reused_and_revokes_the_session() {
    let t = testing::app();
    let old = sign_up(&t, "ANDROID").await.refresh_token.expose().to_owned();
    let new = refresh_ok(&t, &old).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("refreshToken", &old)])).await;
    failure(&r, 401, "TOKEN_REUSED");
    let r = call(handle, &t, event(KRATE, "ok", &[("refreshToken", &new)])).await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn garbage_refresh_token_is_a_401_invalid_token() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "garbage-token", &[])).await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn unknown_refresh_token_of_the_right_shape_is_a_401_invalid_token() {
    let t = testing::app();
    sign_up(&t, "ANDROID").await;
    let r = call(handle, &t, event(KRATE, "ok", &[("refreshToken", &"A".repeat(43))])).await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn refresh_token_dies_after_30_days() {
    let t = testing::app();
    let first = sign_up(&t, "ANDROID").await;
    t.clock.advance(REFRESH_TTL);
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("refreshToken", first.refresh_token.expose())]),
    )
    .await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn missing_refresh_token_is_a_401_invalid_token() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn web_session_refreshes_from_the_cookie_and_gets_a_new_cookie() {
    let t = testing::app();
    let first = sign_up(&t, "WEB").await;
    let r = call(
        handle,
        &t,
        event(KRATE, "cookie", &[("refreshToken", first.refresh_token.expose())]),
    )
    .await;
    success(&r, None);
    let refresh = nambari_http::testing::assert_web_session(&r, "refreshToken", false);
    assert_ne!(refresh, first.refresh_token.expose());
    // The cookie's new token is the live one.
    let r = call(handle, &t, event(KRATE, "cookie", &[("refreshToken", &refresh)])).await;
    success(&r, None);
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let first = sign_up(&t, "ANDROID").await;
    let r = call(
        handle,
        &t,
        event(KRATE, "invalid-json", &[("refreshToken", first.refresh_token.expose())]),
    )
    .await;
    failure(&r, 400, "INVALID_JSON");
}
