//! `handle` driven by the API Gateway v2 events in `events/auth-token-revoke/`.

use nambari_core::testing::calls::auth::{self, Onboarded, PrimaryInput, StartInput, Tokens, Verified, VerifyInput};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
use serde_json::Value;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const TEST_PHONE: &str = "+15555550100";
const TEST_CODE: &str = "123456";
const DEVICE: &str = "android-uuid-abc123";

/// check → start → verify-otp on `platform` for the test number.
async fn verified(t: &TestApp, platform: &str) -> Verified {
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
    auth::verify(
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
    .unwrap()
}

/// The whole sign-up on `platform` (… → primary onboarding): the first session's tokens.
async fn sign_up(t: &TestApp, platform: &str) -> Tokens {
    let Verified::CollectPrimary { onboarding_token, .. } = verified(t, platform).await else {
        panic!("expected COLLECT_PRIMARY");
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

/// A later sign-in of the same user: a second session.
async fn sign_in(t: &TestApp, platform: &str) -> Tokens {
    match verified(t, platform).await {
        Verified::SignedIn { tokens, .. } => *tokens,
        other => panic!("expected a sign-in, got {other:?}"),
    }
}

#[tokio::test]
async fn revoked_refresh_token_no_longer_refreshes() {
    let t = testing::app();
    let tokens = sign_up(&t, "ANDROID").await;
    let token = tokens.refresh_token.expose();
    let r = call(handle, &t, event(KRATE, "ok", &[("refreshToken", token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Token revoked successfully");
    assert_eq!(r.body["action_time"], "2026-04-03T10:30:45");
    assert_eq!(*data, Value::Null);
    assert!(r.headers.get("set-cookie").is_none());
    let e = auth::refresh(&t.app, Some(token)).await.unwrap_err();
    assert_eq!((nambari_http::status_of(&e), e.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn revoking_an_already_revoked_token_is_a_401_invalid_token() {
    let t = testing::app();
    let tokens = sign_up(&t, "ANDROID").await;
    let token = tokens.refresh_token.expose();
    success(
        &call(handle, &t, event(KRATE, "ok", &[("refreshToken", token)])).await,
        None,
    );
    let r = call(handle, &t, event(KRATE, "ok", &[("refreshToken", token)])).await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn revoking_one_session_leaves_the_other_devices_signed_in() {
    let t = testing::app();
    let first = sign_up(&t, "ANDROID").await;
    let second = sign_in(&t, "IOS").await;
    assert_ne!(first.session.sid, second.session.sid);
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("refreshToken", first.refresh_token.expose())]),
    )
    .await;
    success(&r, None);
    assert!(auth::refresh(&t.app, Some(second.refresh_token.expose())).await.is_ok());
}

#[tokio::test]
async fn web_logout_by_cookie_revokes_and_clears_the_cookie() {
    let t = testing::app();
    let tokens = sign_up(&t, "WEB").await;
    let token = tokens.refresh_token.expose();
    let r = call(handle, &t, event(KRATE, "cookie", &[("refreshToken", token)])).await;
    success(&r, None);
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("nambari_rt=;"), "{cookie}");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).skip(1).collect();
    for expected in [
        "Max-Age=0",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/v1/auth/token",
    ] {
        assert!(attributes.contains(&expected), "{expected} missing from {cookie}");
    }
    let e = auth::refresh(&t.app, Some(token)).await.unwrap_err();
    assert_eq!(nambari_http::status_of(&e), 401);
}

#[tokio::test]
async fn garbage_refresh_token_is_a_401_invalid_token() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "garbage-token", &[])).await;
    failure(&r, 401, "INVALID_TOKEN");
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let tokens = sign_up(&t, "ANDROID").await;
    let r = call(
        handle,
        &t,
        event(
            KRATE,
            "invalid-json",
            &[("refreshToken", tokens.refresh_token.expose())],
        ),
    )
    .await;
    failure(&r, 400, "INVALID_JSON");
    // The token is untouched.
    assert!(auth::refresh(&t.app, Some(tokens.refresh_token.expose())).await.is_ok());
}
