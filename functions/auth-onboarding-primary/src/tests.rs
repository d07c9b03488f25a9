//! `handle` driven by the API Gateway v2 events in `events/auth-onboarding-primary/`.

use lambda_http::Request;
use lambda_http::http::HeaderMap;
use nambari_core::auth::{self, AccessBody, StartInput, Tier, Verified, VerifyInput};
use nambari_core::testing::{self, TestApp};
use nambari_core::tokens::TokenKind;
use serde_json::{Value, json};

use super::handle;

const TEST_PHONE: &str = "+15555550100";
const TEST_CODE: &str = "123456";
const DEVICE: &str = "android-uuid-abc123";

/// The event `events/auth-onboarding-primary/<name>.json` with `{{key}}` placeholders filled in.
fn event(name: &str, vars: &[(&str, &str)]) -> Request {
    let path = format!(
        "{}/../../events/auth-onboarding-primary/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (key, value) in vars {
        json = json.replace(&format!("{{{{{key}}}}}"), value);
    }
    assert!(!json.contains("{{"), "{name}: a placeholder was left unfilled");
    lambda_http::request::from_str(&json).unwrap_or_else(|e| panic!("{name} is not an API Gateway v2 event: {e}"))
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

async fn send(t: &TestApp, req: Request) -> Reply {
    let res = handle(t.app.clone(), req).await;
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: serde_json::from_slice(res.body().as_ref()).expect("a JSON body"),
    }
}

fn assert_action_time(body: &Value) {
    let t = body["action_time"].as_str().expect("action_time");
    let shape: String = t.chars().map(|c| if c.is_ascii_digit() { 'D' } else { c }).collect();
    assert_eq!(shape, "DDDD-DD-DDTDD:DD:DD", "action_time {t}");
}

fn assert_json_headers(r: &Reply) {
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["cache-control"], "no-store");
}

/// A 200 envelope with `action`; its `data`.
fn success<'a>(r: &'a Reply, action: Option<&str>) -> &'a Value {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["httpStatus"], "OK");
    assert_eq!(r.body["action"], json!(action));
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_action_time(&r.body);
    assert_json_headers(r);
    &r.body["data"]
}

/// An error envelope with `status`, `httpStatus` and `code`.
fn failure(r: &Reply, status: u16, http_status: &str, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["success"], false);
    assert_eq!(r.body["httpStatus"], http_status);
    assert_eq!(r.body["code"], code);
    assert_action_time(&r.body);
    assert_json_headers(r);
    if status != 422 {
        assert_eq!(r.body["data"], r.body["message"]);
    }
}

/// The field names of a 422's field map.
fn fields(r: &Reply) -> Vec<&str> {
    r.body["data"]
        .as_object()
        .expect("a field map")
        .keys()
        .map(String::as_str)
        .collect()
}

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
        .keys
        .verify::<AccessBody>(TokenKind::Access, data["accessToken"].as_str().unwrap(), t.app.now())
        .unwrap()
        .body
}

#[tokio::test]
async fn adult_gets_tokens_and_the_full_tier() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = send(&t, event("ok", &[("onboardingToken", &token)])).await;
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
    success(&send(&t, event("ok", &[("onboardingToken", &token)])).await, None);
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
    let r = send(&t, event("restricted", &[("onboardingToken", &token)])).await;
    let data = success(&r, None);
    assert_eq!(data["accountTier"], "RESTRICTED");
    assert_eq!(data["blocked"], false);
    assert_eq!(access_claims(&t, data).tier, Tier::Restricted);
}

#[tokio::test]
async fn eighteenth_birthday_today_is_the_full_tier() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = send(&t, event("eighteenth-birthday-today", &[("onboardingToken", &token)])).await;
    assert_eq!(success(&r, None)["accountTier"], "FULL");
}

#[tokio::test]
async fn under_13_is_blocked_until_the_13th_birthday() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = send(&t, event("under-13", &[("onboardingToken", &token)])).await;
    let data = success(&r, Some("ACCOUNT_BLOCKED"));
    assert_eq!(r.body["message"], "Account blocked");
    assert_eq!(
        *data,
        json!({"accessToken": null, "refreshToken": null, "accountTier": null,
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
    let r = send(&t, event("under-13-leap-day", &[("onboardingToken", &token)])).await;
    let data = success(&r, Some("ACCOUNT_BLOCKED"));
    assert_eq!(data["unblockDate"], "2029-03-01");
}

#[tokio::test]
async fn second_use_of_onboarding_token_is_refused() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    success(&send(&t, event("ok", &[("onboardingToken", &token)])).await, None);
    let r = send(&t, event("ok", &[("onboardingToken", &token)])).await;
    failure(&r, 403, "FORBIDDEN", "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn onboarding_token_of_a_blocked_attempt_cannot_be_reused_with_another_birth_date() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    success(
        &send(&t, event("under-13", &[("onboardingToken", &token)])).await,
        Some("ACCOUNT_BLOCKED"),
    );
    let r = send(&t, event("ok", &[("onboardingToken", &token)])).await;
    failure(&r, 403, "FORBIDDEN", "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn another_onboarding_token_after_completion_is_a_403_onboarding_already_complete() {
    let t = testing::app();
    let first = onboarding_token(&t).await;
    let second = onboarding_token(&t).await;
    success(&send(&t, event("ok", &[("onboardingToken", &first)])).await, None);
    let r = send(&t, event("ok", &[("onboardingToken", &second)])).await;
    failure(&r, 403, "FORBIDDEN", "ONBOARDING_ALREADY_COMPLETE");
}

#[tokio::test]
async fn temp_token_passed_as_onboarding_token_is_a_403_invalid_token() {
    let t = testing::app();
    let temp = temp_token(&t).await;
    let r = send(&t, event("ok", &[("onboardingToken", &temp)])).await;
    failure(&r, 403, "FORBIDDEN", "INVALID_TOKEN");
}

#[tokio::test]
async fn onboarding_token_expires_after_an_hour() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    t.clock.advance(3600);
    let r = send(&t, event("ok", &[("onboardingToken", &token)])).await;
    failure(&r, 403, "FORBIDDEN", "INVALID_TOKEN");
}

#[tokio::test]
async fn web_client_gets_the_refresh_cookie() {
    let t = testing::app();
    let token = onboarding_token_on(&t, "WEB").await;
    let r = send(&t, event("ok", &[("onboardingToken", &token)])).await;
    let data = success(&r, None);
    let refresh = data["refreshToken"].as_str().unwrap();
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with(&format!("nambari_rt={refresh};")), "{cookie}");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).skip(1).collect();
    for expected in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth/token"] {
        assert!(attributes.contains(&expected), "{expected} missing from {cookie}");
    }
}

#[tokio::test]
async fn bad_names_and_birth_date_are_a_422_with_a_field_map() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = send(&t, event("bad-fields", &[("onboardingToken", &token)])).await;
    failure(&r, 422, "UNPROCESSABLE_ENTITY", "VALIDATION_ERROR");
    assert_eq!(fields(&r), ["birthDate", "firstName", "lastName"]);
    assert_eq!(r.body["data"]["firstName"], "is required");
    assert_eq!(r.body["data"]["lastName"], "must be 1–50 characters");
    assert_eq!(r.body["data"]["birthDate"], "must be a date as YYYY-MM-DD");
    // A refused form does not use up the token.
    success(&send(&t, event("ok", &[("onboardingToken", &token)])).await, None);
}

#[tokio::test]
async fn birth_date_in_the_future_is_a_422() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = send(&t, event("future-birth-date", &[("onboardingToken", &token)])).await;
    failure(&r, 422, "UNPROCESSABLE_ENTITY", "VALIDATION_ERROR");
    assert_eq!(fields(&r), ["birthDate"]);
    assert_eq!(r.body["data"]["birthDate"], "must be in the past");
}

#[tokio::test]
async fn missing_fields_are_a_422_naming_each() {
    let t = testing::app();
    let r = send(&t, event("missing-fields", &[])).await;
    failure(&r, 422, "UNPROCESSABLE_ENTITY", "VALIDATION_ERROR");
    assert_eq!(fields(&r), ["birthDate", "firstName", "lastName", "onboardingToken"]);
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let token = onboarding_token(&t).await;
    let r = send(&t, event("invalid-json", &[("onboardingToken", &token)])).await;
    failure(&r, 400, "BAD_REQUEST", "INVALID_JSON");
}
