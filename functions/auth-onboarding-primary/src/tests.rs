//! `handle` driven by the API Gateway v2 events in `events/auth-onboarding-primary/`.

use nambari_core::base::tokens::TokenKind;
use nambari_core::testing::calls::auth::{self, AccessBody, StartInput, Tier, Verified, VerifyInput};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
use serde_json::{Value, json};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const TEST_PHONE: &str = "+15555550100";
const TEST_CODE: &str = "123456";
const DEVICE: &str = "android-uuid-abc123";

/// check → passwordless-start: a tempToken for the test number.
async fn temp_token(t: &TestApp) -> String {
    let check = auth::check(&t.app, Some(TEST_PHONE), Some(DEVICE), None).await.unwrap();
    auth::start(
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
    .unwrap()
    .temp_token
}

/// check → start → verify-otp on `platform`: what the code led to.
async fn sign_in(t: &TestApp, platform: &str) -> Verified {
    let temp = temp_token(t).await;
    auth::verify(
        &t.app,
        VerifyInput {
            temp_token: Some(&temp),
            otp: Some(TEST_CODE),
            device_name: Some("Josh's Pixel 4a"),
            platform: Some(platform),
            ip: None,
        },
    )
    .await
    .unwrap()
}

/// An onboardingToken of a new user of the test number, signed in on `platform`.
async fn onboarding_token_on(t: &TestApp, platform: &str) -> String {
    match sign_in(t, platform).await {
        Verified::CollectPrimary { onboarding_token, .. } => onboarding_token,
        other => panic!("expected COLLECT_PRIMARY, got {other:?}"),
    }
}

async fn onboarding_token(t: &TestApp) -> String {
    onboarding_token_on(t, "ANDROID").await
}

fn access_claims(t: &TestApp, data: &Value) -> AccessBody {
    t.app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, data["accessToken"].as_str().unwrap(), t.app.now())
        .unwrap()
        .body
}

#[tokio::test]
async fn adult_gets_tokens_and_the_full_tier() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Welcome to Nambari!");
    assert_eq!(r.body["action_time"], "2026-04-03T10:30:45");
    assert_eq!(data["accountTier"], "FULL");
    assert_eq!(data["blocked"], false);
    assert_eq!(data["unblockDate"], Value::Null);
    assert_eq!(data["expiresIn"], 3600);
    assert_eq!(data["refreshToken"].as_str().map(str::len), Some(43));
    assert_eq!(
        data["onboarding"],
        json!({"primaryComplete": true, "username": false, "email": false,
               "profilePic": false, "interests": false, "bio": false})
    );
    assert!(r.headers.get("set-cookie").is_none(), "only web clients get the cookie");
    let claims = access_claims(&t, data);
    assert_eq!(claims.tier, Tier::Full);
    assert_eq!(claims.phone, TEST_PHONE);
    assert_eq!(claims.amr, ["otp_sms"]);
    assert!(claims.onb.primary_complete);
}

#[tokio::test]
async fn completed_user_is_stored_and_logs_in_next_time() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    success(
        &call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &token)])).await,
        None,
    );
    let user = t.app.db.user_by_phone(TEST_PHONE, t.app.now()).await.unwrap().unwrap();
    assert!(user.primary_complete);
    assert_eq!(user.first_name.as_deref(), Some("Joshua"));
    assert_eq!(user.last_name.as_deref(), Some("Sakweli"));
    assert_eq!(user.birth_date.as_deref(), Some("1995-06-15"));
    assert!(matches!(sign_in(&t, "ANDROID").await, Verified::SignedIn { .. }));
}

#[tokio::test]
async fn teenager_gets_the_restricted_tier() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = call(handle, &t, event(KRATE, "restricted", &[("onboardingToken", &token)])).await;
    let data = success(&r, None);
    assert_eq!(data["accountTier"], "RESTRICTED");
    assert_eq!(data["blocked"], false);
    assert_eq!(access_claims(&t, data).tier, Tier::Restricted);
}

#[tokio::test]
async fn eighteenth_birthday_today_is_the_full_tier() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "eighteenth-birthday-today", &[("onboardingToken", &token)]),
    )
    .await;
    assert_eq!(success(&r, None)["accountTier"], "FULL");
}

#[tokio::test]
async fn under_13_is_blocked_until_the_13th_birthday() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = call(handle, &t, event(KRATE, "under-13", &[("onboardingToken", &token)])).await;
    let data = success(&r, Some("ACCOUNT_BLOCKED"));
    assert_eq!(r.body["message"], "Account blocked");
    assert_eq!(
        *data,
        json!({"accessToken": null, "refreshToken": null, "deviceToken": null, "accountTier": null,
               "onboarding": null, "blocked": true, "unblockDate": "2028-09-15"})
    );
    assert!(r.headers.get("set-cookie").is_none());
    match sign_in(&t, "ANDROID").await {
        Verified::Blocked { unblock_date } => assert_eq!(unblock_date, "2028-09-15"),
        other => panic!("a blocked user signed in: {other:?}"),
    }
}

#[tokio::test]
async fn under_13_born_on_29_february_is_unblocked_on_1_march() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "under-13-leap-day", &[("onboardingToken", &token)]),
    )
    .await;
    let data = success(&r, Some("ACCOUNT_BLOCKED"));
    assert_eq!(data["unblockDate"], "2029-03-01");
}

#[tokio::test]
async fn second_use_of_onboarding_token_is_refused() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    success(
        &call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &token)])).await,
        None,
    );
    let r = call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &token)])).await;
    failure(&r, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn onboarding_token_of_a_blocked_attempt_cannot_be_reused_with_another_birth_date() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    success(
        &call(handle, &t, event(KRATE, "under-13", &[("onboardingToken", &token)])).await,
        Some("ACCOUNT_BLOCKED"),
    );
    let r = call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &token)])).await;
    failure(&r, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn another_onboarding_token_after_completion_is_a_403_onboarding_already_complete() {
    let t = testing::app();
    let first = onboarding_token(&t).await;
    let second = onboarding_token(&t).await;
    success(
        &call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &first)])).await,
        None,
    );
    let r = call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &second)])).await;
    failure(&r, 403, "ONBOARDING_ALREADY_COMPLETE");
}

#[tokio::test]
async fn temp_token_passed_as_onboarding_token_is_a_403_invalid_token() {
    let t = testing::app();
    let temp = temp_token(&t).await;
    let r = call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &temp)])).await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn onboarding_token_expires_after_an_hour() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    t.clock.advance(3600);
    let r = call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &token)])).await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn web_client_gets_the_refresh_cookie() {
    let t = testing::app();
    let token = onboarding_token_on(&t, "WEB").await;
    let r = call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &token)])).await;
    success(&r, None);
    nambari_http::testing::assert_web_session(&r, "refreshToken", true);
}

#[tokio::test]
async fn bad_names_and_birth_date_are_a_422_with_a_field_map() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = call(handle, &t, event(KRATE, "bad-fields", &[("onboardingToken", &token)])).await;
    assert_eq!(
        failure(&r, 422, "VALIDATION_ERROR"),
        ["birthDate", "firstName", "lastName"]
    );
    assert_eq!(r.body["data"]["firstName"], "is required");
    assert_eq!(r.body["data"]["lastName"], "must be 1–50 characters");
    assert_eq!(r.body["data"]["birthDate"], "must be a date as YYYY-MM-DD");
    // A refused form does not use up the token.
    success(
        &call(handle, &t, event(KRATE, "ok", &[("onboardingToken", &token)])).await,
        None,
    );
}

#[tokio::test]
async fn birth_date_in_the_future_is_a_422() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "future-birth-date", &[("onboardingToken", &token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["birthDate"]);
    assert_eq!(r.body["data"]["birthDate"], "must be in the past");
}

#[tokio::test]
async fn missing_fields_are_a_422_naming_each() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(
        failure(&r, 422, "VALIDATION_ERROR"),
        ["birthDate", "firstName", "lastName", "onboardingToken"]
    );
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = call(handle, &t, event(KRATE, "invalid-json", &[("onboardingToken", &token)])).await;
    failure(&r, 400, "INVALID_JSON");
}
