//! `handle` driven by the API Gateway v2 events in `events/auth-verify-otp/`.

use nambari_core::base::ids::UserId;
use nambari_core::base::tokens::TokenKind;
use nambari_core::base::values::Platform;
use nambari_core::model::records::User;
use nambari_core::ports::table::Db;
use nambari_core::testing::calls::auth::{self, AccessBody, OnboardingBody, Sent, StartInput, Tier};
use nambari_core::testing::{self, TestApp};
use nambari_http::testing::{call, event, failure, success};
use serde_json::{Value, json};

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const TZ_PHONE: &str = "+255745051250";
const TEST_PHONE: &str = "+15555550100";
const TEST_CODE: &str = "123456";
const DEVICE: &str = "android-uuid-abc123";

/// A stored user with this phone, shaped by `edit`.
async fn seed_user(t: &TestApp, phone: &str, edit: impl FnOnce(&mut User)) -> User {
    let now = t.app.now();
    let mut user = User::new(UserId::generate().unwrap(), phone, "TZ", now);
    edit(&mut user);
    t.app
        .db
        .transact(Db::create_user_writes(&user, now).unwrap().into())
        .await
        .unwrap();
    user
}

/// A checkToken for `phone` on [`DEVICE`].
async fn check_token(t: &TestApp, phone: &str) -> String {
    auth::check(&t.app, Some(phone), Some(DEVICE), None)
        .await
        .unwrap()
        .check_token
}

/// check → passwordless-start over SMS: the tempToken and the (sandbox) code.
async fn start(t: &TestApp, phone: &str) -> Sent {
    let check = check_token(t, phone).await;
    auth::start(
        &t.app,
        StartInput {
            check_token: Some(&check),
            channel: Some("SMS"),
            device_id: Some(DEVICE),
            locale: "en".into(),
            ip: None,
        },
    )
    .await
    .unwrap()
}

/// A user who finished primary onboarding as an adult.
async fn returning_user(t: &TestApp, phone: &str) -> User {
    seed_user(t, phone, |u| {
        u.primary_complete = true;
        u.first_name = Some("Joshua".into());
        u.last_name = Some("Sakweli".into());
        u.birth_date = Some("1995-06-15".into());
        u.username = Some("josh".into());
    })
    .await
}

#[tokio::test]
async fn new_user_is_asked_to_collect_primary_with_an_onboarding_token() {
    let t = testing::app();
    let sent = start(&t, TZ_PHONE).await;
    let otp = sent.sandbox_otp.clone().unwrap();
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("tempToken", &sent.temp_token), ("otp", &otp)]),
    )
    .await;
    let data = success(&r, Some("COLLECT_PRIMARY"));
    assert_eq!(r.body["message"], "Phone verified. Let us set up your account.");
    assert_eq!(r.body["action_time"], "2026-04-03T10:30:45");
    assert_eq!(data["accessToken"], Value::Null);
    assert_eq!(data["refreshToken"], Value::Null);
    assert_eq!(data["primaryComplete"], false);
    assert_eq!(
        data["onboarding"],
        json!({"primaryComplete": false, "username": false, "email": false,
               "profilePic": false, "interests": false, "bio": false})
    );
    assert!(r.headers.get("set-cookie").is_none());

    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<OnboardingBody>(
            TokenKind::Onboarding,
            data["onboardingToken"].as_str().unwrap(),
            t.app.now(),
        )
        .unwrap();
    assert_eq!(claims.body.phone, TZ_PHONE);
    assert_eq!(claims.body.did, DEVICE);
    assert_eq!(claims.body.dname.as_deref(), Some("Josh's Pixel 4a"));
    assert_eq!(claims.body.plt, Some(Platform::Android));
    assert_eq!(claims.body.amr, ["otp_sms"]);

    let user = t
        .app
        .db
        .user_by_phone(TZ_PHONE, t.app.now())
        .await
        .unwrap()
        .expect("a new user");
    assert_eq!(claims.sub, user.id.as_str());
    assert!(!user.primary_complete);
}

#[tokio::test]
async fn returning_user_gets_access_and_refresh_tokens() {
    let t = testing::app();
    let user = returning_user(&t, TZ_PHONE).await;
    let sent = start(&t, TZ_PHONE).await;
    let otp = sent.sandbox_otp.clone().unwrap();
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("tempToken", &sent.temp_token), ("otp", &otp)]),
    )
    .await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Welcome back");
    assert_eq!(data["onboardingToken"], Value::Null);
    assert_eq!(data["primaryComplete"], true);
    assert_eq!(data["expiresIn"], 3600);
    assert_eq!(
        data["onboarding"],
        json!({"primaryComplete": true, "username": true, "email": false,
               "profilePic": false, "interests": false, "bio": false})
    );
    assert_eq!(data["refreshToken"].as_str().map(str::len), Some(43));
    assert!(r.headers.get("set-cookie").is_none(), "only web clients get the cookie");

    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<AccessBody>(TokenKind::Access, data["accessToken"].as_str().unwrap(), t.app.now())
        .unwrap();
    assert_eq!(claims.sub, user.id.as_str());
    assert_eq!(claims.body.phone, TZ_PHONE);
    assert_eq!(claims.body.tier, Tier::Full);
    assert_eq!(claims.body.amr, ["otp_sms"]);
    assert!(claims.body.onb.primary_complete);
}

#[tokio::test]
async fn returning_user_without_primary_is_asked_to_collect_primary_again() {
    let t = testing::app();
    let user = seed_user(&t, TZ_PHONE, |_| {}).await;
    let sent = start(&t, TZ_PHONE).await;
    let otp = sent.sandbox_otp.clone().unwrap();
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("tempToken", &sent.temp_token), ("otp", &otp)]),
    )
    .await;
    let data = success(&r, Some("COLLECT_PRIMARY"));
    let claims = t
        .app
        .keys()
        .unwrap()
        .verify::<OnboardingBody>(
            TokenKind::Onboarding,
            data["onboardingToken"].as_str().unwrap(),
            t.app.now(),
        )
        .unwrap();
    assert_eq!(claims.sub, user.id.as_str(), "no second account is created");
}

#[tokio::test]
async fn under_age_user_is_told_the_account_is_blocked_until_the_13th_birthday() {
    let t = testing::app();
    seed_user(&t, TZ_PHONE, |u| {
        u.first_name = Some("Amani".into());
        u.last_name = Some("Sakweli".into());
        u.birth_date = Some("2015-09-15".into());
        u.blocked_until = Some("2028-09-15".into());
    })
    .await;
    let sent = start(&t, TZ_PHONE).await;
    let otp = sent.sandbox_otp.clone().unwrap();
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("tempToken", &sent.temp_token), ("otp", &otp)]),
    )
    .await;
    let data = success(&r, Some("ACCOUNT_BLOCKED"));
    assert_eq!(r.body["message"], "Account blocked");
    assert_eq!(data["blocked"], true);
    assert_eq!(data["unblockDate"], "2028-09-15");
    assert_eq!(
        data["primaryComplete"], false,
        "primary onboarding is not complete for a blocked user"
    );
    assert_eq!(data["accessToken"], Value::Null);
    assert_eq!(data["refreshToken"], Value::Null);
    assert_eq!(data["onboardingToken"], Value::Null);
}

#[tokio::test]
async fn web_sign_in_sets_the_refresh_cookie() {
    let t = testing::app();
    returning_user(&t, TEST_PHONE).await;
    let sent = start(&t, TEST_PHONE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "web", &[("tempToken", &sent.temp_token), ("otp", TEST_CODE)]),
    )
    .await;
    success(&r, None);
    nambari_http::testing::assert_web_session(&r, "refreshToken", true);
}

#[tokio::test]
async fn wrong_code_is_a_403_invalid_otp_with_the_attempts_left() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "wrong-otp", &[("tempToken", &sent.temp_token)]),
    )
    .await;
    failure(&r, 403, "INVALID_OTP");
    assert_eq!(r.body["message"], "Invalid code. 2 attempt(s) left");
}

#[tokio::test]
async fn code_is_still_good_one_second_before_it_expires() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE).await;
    t.clock.advance(119);
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("tempToken", &sent.temp_token), ("otp", TEST_CODE)]),
    )
    .await;
    success(&r, Some("COLLECT_PRIMARY"));
}

#[tokio::test]
async fn expired_code_is_a_403_otp_expired() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE).await;
    t.clock.advance(121);
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("tempToken", &sent.temp_token), ("otp", TEST_CODE)]),
    )
    .await;
    failure(&r, 403, "OTP_EXPIRED");
}

#[tokio::test]
async fn third_wrong_code_is_a_403_too_many_otp_attempts_and_ends_the_session() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE).await;
    let wrong = || event(KRATE, "wrong-otp", &[("tempToken", &sent.temp_token)]);
    let r = call(handle, &t, wrong()).await;
    failure(&r, 403, "INVALID_OTP");
    assert_eq!(r.body["message"], "Invalid code. 2 attempt(s) left");
    let r = call(handle, &t, wrong()).await;
    failure(&r, 403, "INVALID_OTP");
    assert_eq!(r.body["message"], "Invalid code. 1 attempt(s) left");
    let r = call(handle, &t, wrong()).await;
    failure(&r, 403, "TOO_MANY_OTP_ATTEMPTS");
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("tempToken", &sent.temp_token), ("otp", TEST_CODE)]),
    )
    .await;
    failure(&r, 403, "TOO_MANY_OTP_ATTEMPTS");
}

#[tokio::test]
async fn second_use_of_temp_token_is_refused() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE).await;
    let ok = || event(KRATE, "ok", &[("tempToken", &sent.temp_token), ("otp", TEST_CODE)]);
    success(&call(handle, &t, ok()).await, Some("COLLECT_PRIMARY"));
    let r = call(handle, &t, ok()).await;
    failure(&r, 403, "TOKEN_ALREADY_USED");
}

#[tokio::test]
async fn check_token_passed_as_temp_token_is_a_403_invalid_token() {
    let t = testing::app();
    let check = check_token(&t, TEST_PHONE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("tempToken", &check), ("otp", TEST_CODE)]),
    )
    .await;
    failure(&r, 403, "INVALID_TOKEN");
}

#[tokio::test]
async fn bad_otp_format_is_a_422_naming_otp() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "bad-otp-format", &[("tempToken", &sent.temp_token)]),
    )
    .await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["otp"]);
    assert_eq!(r.body["data"]["otp"], "must be exactly 6 digits");
    // A malformed code is not a wrong guess: the session still takes the right one.
    let r = call(
        handle,
        &t,
        event(KRATE, "ok", &[("tempToken", &sent.temp_token), ("otp", TEST_CODE)]),
    )
    .await;
    success(&r, Some("COLLECT_PRIMARY"));
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let sent = start(&t, TEST_PHONE).await;
    let r = call(
        handle,
        &t,
        event(KRATE, "invalid-json", &[("tempToken", &sent.temp_token)]),
    )
    .await;
    failure(&r, 400, "INVALID_JSON");
}
