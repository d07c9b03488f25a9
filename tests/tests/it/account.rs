//! Credentials and account (issue 4), end to end over local mode's HTTP
//! server: password + device check, forgot password, Google sign-in against
//! a JWKS served by wiremock, PIN step-up, secondary onboarding, sessions,
//! logout and the one-step flow. The sign-in paths run on DynamoDB (moto)
//! as well as in memory.

use nambari_tests::rig::{Rig, SignedUp, jwt_claims};
use nambari_tests::server::{Reply, Store};
use serde_json::{Value, json};
use wiremock::MockServer;

const PHONE: &str = "+255745051250";
const OTHER: &str = "+254712345678";
const DEVICE: &str = "phone-1";
const PASSWORD: &str = "correct horse battery";

fn no_limits() -> nambari_core::base::config::Settings {
    let mut s = nambari_core::testing::settings();
    s.limits.enabled = false;
    s
}

async fn set_password(rig: &Rig, user: &SignedUp) {
    let r = rig
        .call(
            "PUT",
            "/account/password",
            Some(json!({"newPassword": PASSWORD, "confirmPassword": PASSWORD})),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["authMethods"]["password"], true);
}

/// A password sign-in on `device`, presenting `device_token` (a known
/// device) or none.
async fn password_login_with(rig: &Rig, device: &str, device_token: Option<&str>, password: &str) -> Reply {
    let ct = rig.check(PHONE, device).await;
    rig.post(
        "/auth/login/password",
        json!({"checkToken": ct, "password": password, "deviceId": device, "deviceToken": device_token, "deviceName": "Pixel", "platform": "ANDROID"}),
    )
    .await
}

async fn password_login(rig: &Rig, device: &str, password: &str) -> Reply {
    password_login_with(rig, device, None, password).await
}

// ---------------------------------------------------------------- password

async fn password_sign_in_with_the_device_check(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    set_password(&rig, &user).await;

    // The device the user signed up on is known (its deviceToken proves
    // it): tokens at once.
    let r = password_login_with(&rig, DEVICE, Some(&user.device_token), PASSWORD).await;
    assert_eq!((r.status, r.action()), (200, ""), "{}", r.body);
    assert_eq!(r.body["data"]["requiresDeviceVerification"], false);
    let access = r.data_str("accessToken");
    assert_eq!(jwt_claims(&access)["amr"], json!(["pwd"]));
    assert!(r.data_str("refreshToken").len() == 43);

    // A new device: VERIFY_DEVICE and a code; the code completes the sign-in.
    let r = password_login(&rig, "laptop-1", PASSWORD).await;
    assert_eq!((r.status, r.action()), (200, "VERIFY_DEVICE"), "{}", r.body);
    assert_eq!(r.body["data"]["accessToken"], Value::Null);
    assert_eq!(r.body["data"]["maskedDestination"], "••• ••• ••50");
    let dvt = r.data_str("deviceVerificationToken");
    assert_eq!(jwt_claims(&dvt)["typ"], "device_verification");
    let code = rig.delivered.last_code_to(PHONE).expect("a code went to the phone");
    let v = rig
        .post(
            "/account/device/verify",
            json!({"deviceVerificationToken": dvt, "otp": code}),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(jwt_claims(&v.data_str("accessToken"))["amr"], json!(["pwd", "otp_sms"]));
    // The token is spent, and the laptop is known now.
    let again = rig
        .post(
            "/account/device/verify",
            json!({"deviceVerificationToken": dvt, "otp": code}),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (403, "TOKEN_ALREADY_USED"),
        "{}",
        again.body
    );
    let laptop = v.data_str("deviceToken");
    let r = password_login_with(&rig, "laptop-1", Some(&laptop), PASSWORD).await;
    assert_eq!((r.status, r.action()), (200, ""), "{}", r.body);
}

#[tokio::test]
async fn a_password_signs_in_on_a_known_device_and_needs_a_code_on_a_new_one_in_memory() {
    password_sign_in_with_the_device_check(Store::Memory).await;
}

#[tokio::test]
async fn a_password_signs_in_on_a_known_device_and_needs_a_code_on_a_new_one_on_dynamodb() {
    password_sign_in_with_the_device_check(Store::Dynamo).await;
}

async fn lockout(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    set_password(&rig, &user).await;
    for i in 1..=4 {
        let r = password_login(&rig, DEVICE, "wrong password!").await;
        assert_eq!(
            (r.status, r.code()),
            (403, "INVALID_CREDENTIALS"),
            "attempt {i}: {}",
            r.body
        );
    }
    let r = password_login(&rig, DEVICE, "wrong password!").await;
    assert_eq!(
        (r.status, r.code()),
        (403, "ACCOUNT_LOCKED"),
        "the 5th locks: {}",
        r.body
    );
    // The 6th, with the right password, is still refused, with the wait.
    let r = password_login(&rig, DEVICE, PASSWORD).await;
    assert_eq!((r.status, r.code()), (403, "ACCOUNT_LOCKED"), "{}", r.body);
    assert_eq!(r.body["retryAfter"], 900);
    assert_eq!(r.headers["retry-after"], "900");
    // Passwordless sign-in is not locked out.
    let (tt, code) = rig.send_code(PHONE, DEVICE).await;
    let v = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    // After 15 minutes the right password works again.
    rig.clock.advance(901);
    let r = password_login(&rig, DEVICE, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn the_sixth_password_attempt_is_locked_even_when_right_in_memory() {
    lockout(Store::Memory).await;
}

#[tokio::test]
async fn the_sixth_password_attempt_is_locked_even_when_right_on_dynamodb() {
    lockout(Store::Dynamo).await;
}

#[tokio::test]
async fn an_unknown_number_and_an_account_without_password_are_refused_like_a_wrong_password() {
    let rig = Rig::start_with(Store::Memory, no_limits()).await;
    let r = password_login(&rig, DEVICE, PASSWORD).await;
    assert_eq!((r.status, r.code()), (403, "INVALID_CREDENTIALS"), "{}", r.body);
    rig.sign_up(PHONE, DEVICE).await;
    let r = password_login(&rig, DEVICE, PASSWORD).await;
    assert_eq!((r.status, r.code()), (403, "PASSWORD_NOT_SET"), "{}", r.body);
}

#[tokio::test]
async fn changing_a_password_needs_the_current_one_and_a_fresh_code_does_not_do() {
    let rig = Rig::start_with(Store::Memory, no_limits()).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    set_password(&rig, &user).await;
    // Past FRESH_AUTH_SECONDS the sign-up's code no longer stands in.
    rig.clock.advance(601);
    let refreshed = rig
        .post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await;
    let at = refreshed.data_str("accessToken");
    let change = |current: Option<&str>| {
        let mut body = json!({"newPassword": "a brand new password"});
        if let Some(c) = current {
            body["currentPassword"] = json!(c);
        }
        body
    };
    let r = rig
        .call("PUT", "/account/password", Some(change(None)), Some(&at))
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{}", r.body);
    assert!(r.body["data"]["currentPassword"].is_string());
    let r = rig
        .call(
            "PUT",
            "/account/password",
            Some(change(Some("not it at all"))),
            Some(&at),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "INVALID_CREDENTIALS"), "{}", r.body);
    let r = rig
        .call("PUT", "/account/password", Some(change(Some(PASSWORD))), Some(&at))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A fresh code (a new sign-in) does not stand in for the current
    // password: a SIM-swapper has one.
    let (tt, code) = rig.send_code(PHONE, DEVICE).await;
    let v = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    let fresh = v.data_str("accessToken");
    let r = rig
        .call(
            "PUT",
            "/account/password",
            Some(json!({"newPassword": "third password here"})),
            Some(&fresh),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{}", r.body);
    assert!(r.body["data"]["currentPassword"].is_string());
}

// ---------------------------------------------------------------- forgot password

async fn forgot_password(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    set_password(&rig, &user).await;
    // A second device is signed in too.
    let (tt, code) = rig.send_code(PHONE, "tablet").await;
    let tablet = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    let tablet_rt = tablet.data_str("refreshToken");

    let ct = rig.check(PHONE, DEVICE).await;
    let i = rig
        .post(
            "/auth/password/forgot/initiate",
            json!({"checkToken": ct, "deviceId": DEVICE}),
        )
        .await;
    assert_eq!(i.status, 200, "{}", i.body);
    assert_eq!(i.body["data"]["maskedPhone"], "••• ••• ••50");
    assert_eq!(i.body["data"]["resetToken"], Value::Null);
    // The checkToken was not consumed by initiate.
    let still = rig
        .post(
            "/auth/passwordless/channels",
            json!({"checkToken": ct, "deviceId": DEVICE}),
        )
        .await;
    assert_eq!(still.status, 200, "{}", still.body);
    let code = rig.delivered.last_code_to(PHONE).unwrap();
    let v = rig
        .post(
            "/auth/password/forgot/verify-otp",
            json!({"tempToken": i.data_str("tempToken"), "otp": code}),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let reset = v.data_str("resetToken");
    assert_eq!(jwt_claims(&reset)["typ"], "reset");

    let mismatch = rig
        .post(
            "/auth/password/forgot/reset",
            json!({"resetToken": reset, "newPassword": "new password 1", "confirmPassword": "new password 2"}),
        )
        .await;
    assert_eq!(
        (mismatch.status, mismatch.code()),
        (400, "PASSWORD_MISMATCH"),
        "{}",
        mismatch.body
    );
    let short = rig
        .post(
            "/auth/password/forgot/reset",
            json!({"resetToken": reset, "newPassword": "short", "confirmPassword": "short"}),
        )
        .await;
    assert_eq!(
        (short.status, short.code()),
        (422, "VALIDATION_ERROR"),
        "{}",
        short.body
    );
    let done = rig
        .post(
            "/auth/password/forgot/reset",
            json!({"resetToken": reset, "newPassword": "new password 1", "confirmPassword": "new password 1"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let fresh_at = done.data_str("accessToken");

    // Every earlier refresh token and access token is dead; the new session works.
    for rt in [&user.refresh_token, &tablet_rt] {
        let r = rig.post("/auth/token/refresh", json!({"refreshToken": rt})).await;
        assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
    }
    let r = rig.call("GET", "/account/me", None, Some(&user.access_token)).await;
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
    let r = rig.call("GET", "/account/me", None, Some(&fresh_at)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rig
        .post(
            "/auth/password/forgot/reset",
            json!({"resetToken": reset, "newPassword": "new password 1", "confirmPassword": "new password 1"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "TOKEN_ALREADY_USED"), "{}", r.body);
    // The old password is gone, the new one signs in.
    let r = password_login(&rig, DEVICE, PASSWORD).await;
    assert_eq!((r.status, r.code()), (403, "INVALID_CREDENTIALS"), "{}", r.body);
    let r = password_login(&rig, DEVICE, "new password 1").await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn forgot_password_end_to_end_revokes_every_session_in_memory() {
    forgot_password(Store::Memory).await;
}

#[tokio::test]
async fn forgot_password_end_to_end_revokes_every_session_on_dynamodb() {
    forgot_password(Store::Dynamo).await;
}

// ---------------------------------------------------------------- Google

use crate::google::{self, CLIENT};

fn google_token(claims: Value) -> String {
    google::sign(&claims)
}

fn google_claims(sub: &str) -> Value {
    let now = nambari_core::testing::T0;
    json!({"iss": "https://accounts.google.com", "aud": CLIENT, "sub": sub, "iat": now, "exp": now + 3600, "email": "asha@example.com"})
}

async fn google_rig(store: Store) -> (Rig, MockServer) {
    google::rig(store, no_limits()).await
}

/// A sign-in with `provider` on [`DEVICE`] (presenting `device_token`),
/// whose idToken has `claims` and the nonce of the sign-in's checkToken.
async fn oauth_login_with(rig: &Rig, provider: &str, device_token: &str, mut claims: Value) -> Reply {
    let check = rig
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": DEVICE}))
        .await;
    claims["nonce"] = json!(check.data_str("oauthNonce"));
    rig.post(
        "/auth/login/oauth",
        json!({"checkToken": check.data_str("checkToken"), "provider": provider, "idToken": google_token(claims), "deviceId": DEVICE, "deviceToken": device_token, "state": "s-42"}),
    )
    .await
}

async fn oauth_login(rig: &Rig, device_token: &str, claims: Value) -> Reply {
    oauth_login_with(rig, "GOOGLE", device_token, claims).await
}

/// Links the idToken of `claims` (with a nonce issued for the link).
async fn oauth_link(rig: &Rig, access_token: &str, mut claims: Value) -> Reply {
    let n = rig
        .call("POST", "/account/oauth/nonce", None, Some(access_token))
        .await
        .data_str("nonce");
    claims["nonce"] = json!(n);
    rig.call(
        "POST",
        "/account/oauth/link",
        Some(json!({"provider": "GOOGLE", "idToken": google_token(claims), "nonce": n})),
        Some(access_token),
    )
    .await
}

async fn google_sign_in(store: Store) {
    let (rig, _jwks) = google_rig(store).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    let dt = user.device_token.clone();
    // Not linked yet.
    let r = oauth_login(&rig, &dt, google_claims("g-1")).await;
    assert_eq!((r.status, r.code()), (403, "OAUTH_NOT_LINKED"), "{}", r.body);
    let l = oauth_link(&rig, &user.access_token, google_claims("g-1")).await;
    assert_eq!(l.status, 200, "{}", l.body);
    assert_eq!(l.body["data"]["authMethods"]["google"], true);
    let check = rig
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": DEVICE}))
        .await;
    assert_eq!(check.body["data"]["authMethods"]["google"], true);

    let r = oauth_login(&rig, &dt, google_claims("g-1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["state"], "s-42");
    assert_eq!(jwt_claims(&r.data_str("accessToken"))["amr"], json!(["oauth_google"]));
    let dt = r.data_str("deviceToken");

    let mut expired = google_claims("g-1");
    expired["exp"] = json!(nambari_core::testing::T0 - 120);
    let mut audience = google_claims("g-1");
    audience["aud"] = json!("someone-else");
    let mut issuer = google_claims("g-1");
    issuer["iss"] = json!("https://evil.example");
    for (why, claims) in [
        ("expired", expired),
        ("wrong audience", audience),
        ("wrong issuer", issuer),
    ] {
        let r = oauth_login(&rig, &dt, claims).await;
        assert_eq!((r.status, r.code()), (403, "INVALID_TOKEN"), "{why}: {}", r.body);
    }
    // Another Google account than the linked one.
    let r = oauth_login(&rig, &dt, google_claims("g-2")).await;
    assert_eq!((r.status, r.code()), (403, "INVALID_TOKEN"), "{}", r.body);
    // Apple is not linked.
    let r = oauth_login_with(&rig, "APPLE", &dt, google_claims("g-1")).await;
    assert_eq!((r.status, r.code()), (403, "OAUTH_NOT_LINKED"), "{}", r.body);

    // The same Google account cannot be linked to a second user.
    let other = rig.sign_up(OTHER, "other-phone").await;
    let l = oauth_link(&rig, &other.access_token, google_claims("g-1")).await;
    assert_eq!((l.status, l.code()), (409, "CONFLICT"), "{}", l.body);

    // Unlinked, it no longer signs in.
    let u = rig
        .call("DELETE", "/account/oauth/google", None, Some(&user.access_token))
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    assert_eq!(u.body["data"]["authMethods"]["google"], false);
    let r = oauth_login(&rig, &dt, google_claims("g-1")).await;
    assert_eq!((r.status, r.code()), (403, "OAUTH_NOT_LINKED"), "{}", r.body);
}

#[tokio::test]
async fn google_sign_in_checks_the_token_against_the_jwks_in_memory() {
    google_sign_in(Store::Memory).await;
}

#[tokio::test]
async fn google_sign_in_checks_the_token_against_the_jwks_on_dynamodb() {
    google_sign_in(Store::Dynamo).await;
}

// ---------------------------------------------------------------- PIN step-up

#[tokio::test]
async fn the_right_pin_mints_a_step_up_token_and_the_sixth_wrong_pin_is_locked() {
    let rig = Rig::start_with(Store::Memory, no_limits()).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    let at = user.access_token.as_str();
    let trivial = rig
        .call("PUT", "/account/pin", Some(json!({"pin": "1234"})), Some(at))
        .await;
    assert_eq!(
        (trivial.status, trivial.code()),
        (422, "VALIDATION_ERROR"),
        "{}",
        trivial.body
    );
    let r = rig
        .call(
            "POST",
            "/auth/step-up",
            Some(json!({"pin": "2468", "scope": "payments:send"})),
            Some(at),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "PIN_NOT_SET"), "{}", r.body);
    let set = rig
        .call("PUT", "/account/pin", Some(json!({"pin": "2468"})), Some(at))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["data"]["authMethods"]["pin"], true);

    let r = rig
        .call(
            "POST",
            "/auth/step-up",
            Some(json!({"pin": "2468", "scope": "payments:send"})),
            Some(at),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.data_str("stepUpToken");
    let claims = jwt_claims(&token);
    assert_eq!(
        (claims["typ"].as_str(), claims["scope"].as_str()),
        (Some("step_up"), Some("payments:send"))
    );
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    assert_eq!(claims["sub"], user.user_id);

    // The success's attempt slot lapses with its lease (docs/SECURITY.md);
    // on the fixed clock that takes a step.
    rig.clock.advance(15);
    for i in 1..=4 {
        let r = rig
            .call(
                "POST",
                "/auth/step-up",
                Some(json!({"pin": "1357", "scope": "payments:send"})),
                Some(at),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (403, "INVALID_CREDENTIALS"),
            "attempt {i}: {}",
            r.body
        );
    }
    let r = rig
        .call(
            "POST",
            "/auth/step-up",
            Some(json!({"pin": "1357", "scope": "payments:send"})),
            Some(at),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "ACCOUNT_LOCKED"), "{}", r.body);
    assert_eq!(r.body["retryAfter"], 900, "{}", r.body);
    let r = rig
        .call(
            "POST",
            "/auth/step-up",
            Some(json!({"pin": "2468", "scope": "payments:send"})),
            Some(at),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "ACCOUNT_LOCKED"),
        "the right PIN is locked out too: {}",
        r.body
    );
    // Changing the PIN needs the current one (locked now); a code does not do.
    rig.clock.advance(601);
    let r = rig
        .call("PUT", "/account/pin", Some(json!({"pin": "8642"})), Some(at))
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{}", r.body);
}

// ---------------------------------------------------------------- secondary onboarding

fn flags(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    let at = r.data_str("accessToken");
    assert_eq!(
        jwt_claims(&at)["onb"],
        r.body["data"]["onboarding"],
        "the token carries the flags it reports"
    );
    r.body["data"]["onboarding"].clone()
}

#[tokio::test]
async fn each_secondary_onboarding_step_flips_exactly_its_flag() {
    let rig = Rig::start_with(Store::Memory, no_limits()).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    let at = user.access_token.clone();
    let mut expected = json!({"primaryComplete": true, "username": false, "email": false, "profilePic": false, "interests": false, "bio": false});
    assert_eq!(jwt_claims(&at)["onb"], expected);

    let steps: Vec<(&str, &str, Value)> = vec![
        ("username", "/account/username", json!({"username": "Asha_M"})),
        (
            "interests",
            "/account/interests",
            json!({"interests": ["music", "football"]}),
        ),
        ("bio", "/account/bio", json!({"bio": "Nairobi, coffee, code."})),
        (
            "profilePic",
            "/account/profile-pic",
            json!({"profilePic": "https://cdn.example.com/a.jpg"}),
        ),
    ];
    for (flag, route, body) in steps {
        let r = rig.call("PUT", route, Some(body), Some(&at)).await;
        expected[flag] = json!(true);
        assert_eq!(flags(&r), expected, "after {route}");
    }
    // Email: a code to the address, then verify.
    let s = rig
        .call(
            "POST",
            "/account/email/start",
            Some(json!({"email": "Asha@Example.com"})),
            Some(&at),
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body["data"]["maskedDestination"], "A•••@e••••••.com");
    let code = rig
        .delivered
        .last_code_to("Asha@example.com")
        .expect("an email with the code");
    let v = rig
        .call(
            "POST",
            "/account/email/verify",
            Some(json!({"tempToken": s.data_str("tempToken"), "otp": code})),
            Some(&at),
        )
        .await;
    expected["email"] = json!(true);
    assert_eq!(flags(&v), expected);

    let me = rig.call("GET", "/account/me", None, Some(&at)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let d = &me.body["data"];
    assert_eq!(
        (d["username"].as_str(), d["email"].as_str()),
        (Some("asha_m"), Some("Asha@example.com"))
    );
    assert_eq!(d["interests"], json!(["music", "football"]));
    assert_eq!(d["onboarding"], expected);

    // EMAIL is now a sign-in channel of this user.
    let ct = rig.check(PHONE, DEVICE).await;
    let ch = rig
        .post(
            "/auth/passwordless/channels",
            json!({"checkToken": ct, "deviceId": DEVICE}),
        )
        .await;
    assert!(
        ch.body["data"]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["channel"] == "EMAIL"),
        "{}",
        ch.body
    );

    // Taken, case-insensitively, by another user: 409.
    let other = rig.sign_up(OTHER, "other-phone").await;
    let r = rig
        .call(
            "PUT",
            "/account/username",
            Some(json!({"username": "ASHA_m"})),
            Some(&other.access_token),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT"), "{}", r.body);
    let r = rig
        .call(
            "POST",
            "/account/email/start",
            Some(json!({"email": "asha@EXAMPLE.com"})),
            Some(&other.access_token),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT"), "{}", r.body);
    // Renaming frees the old name.
    let r = rig
        .call(
            "PUT",
            "/account/username",
            Some(json!({"username": "asha.m"})),
            Some(&at),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rig
        .call(
            "PUT",
            "/account/username",
            Some(json!({"username": "asha_m"})),
            Some(&other.access_token),
        )
        .await;
    assert_eq!(r.status, 200, "the freed name can be taken: {}", r.body);
}

// ---------------------------------------------------------------- sessions

#[tokio::test]
async fn logout_revokes_only_the_current_device_and_sessions_can_be_listed_and_revoked() {
    let rig = Rig::start_with(Store::Memory, no_limits()).await;
    let phone = rig.sign_up(PHONE, DEVICE).await;
    let (tt, code) = rig.send_code(PHONE, "tablet").await;
    let tablet = rig
        .post(
            "/auth/verify-otp",
            json!({"tempToken": tt, "otp": code, "deviceName": "Galaxy Tab", "platform": "ANDROID"}),
        )
        .await;
    let (tt, code) = rig.send_code(PHONE, "laptop").await;
    let laptop = rig
        .post(
            "/auth/verify-otp",
            json!({"tempToken": tt, "otp": code, "platform": "WEB"}),
        )
        .await;

    let list = rig
        .call("GET", "/account/sessions", None, Some(&phone.access_token))
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let sessions = list.body["data"]["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 3, "{}", list.body);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(
        sessions
            .iter()
            .any(|s| s["deviceName"] == "Galaxy Tab" && s["platform"] == "ANDROID")
    );

    // Logout on the tablet: the tablet is out, the others stay in.
    let tablet_at = tablet.data_str("accessToken");
    let r = rig.call("POST", "/auth/logout", None, Some(&tablet_at)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rig
        .post(
            "/auth/token/refresh",
            json!({"refreshToken": tablet.data_str("refreshToken")}),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
    let r = rig.call("GET", "/account/me", None, Some(&tablet_at)).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "INVALID_TOKEN"),
        "a logged-out access token: {}",
        r.body
    );
    let r = rig
        .post("/auth/token/refresh", json!({"refreshToken": phone.refresh_token}))
        .await;
    assert_eq!(r.status, 200, "the phone stays signed in: {}", r.body);
    let phone_at = r.data_str("accessToken");

    // The phone signs the laptop out by id.
    let laptop_sid = jwt_claims(&laptop.data_str("accessToken"))["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = rig
        .call(
            "DELETE",
            &format!("/account/sessions/{laptop_sid}"),
            None,
            Some(&phone_at),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rig
        .post(
            "/auth/token/refresh",
            json!({"refreshToken": laptop.cookie("nambari_rt").expect("the web session's refresh cookie")}),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
    let r = rig
        .call(
            "DELETE",
            &format!("/account/sessions/{laptop_sid}"),
            None,
            Some(&phone_at),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{}", r.body);
    let list = rig.call("GET", "/account/sessions", None, Some(&phone_at)).await;
    assert_eq!(
        list.body["data"]["sessions"].as_array().unwrap().len(),
        1,
        "{}",
        list.body
    );
    // Another user's session id is not found either.
    let other = rig.sign_up(OTHER, "other").await;
    let phone_sid = jwt_claims(&phone_at)["sid"].as_str().unwrap().to_owned();
    let r = rig
        .call(
            "DELETE",
            &format!("/account/sessions/{phone_sid}"),
            None,
            Some(&other.access_token),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{}", r.body);
}

#[tokio::test]
async fn bearer_routes_refuse_a_missing_a_bad_or_a_non_access_token() {
    let rig = Rig::start_with(Store::Memory, no_limits()).await;
    let r = rig.call("GET", "/account/me", None, None).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{}", r.body);
    let r = rig.call("GET", "/account/me", None, Some("not.a.jwt")).await;
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
    let ct = rig.check(PHONE, DEVICE).await;
    let r = rig.call("GET", "/account/me", None, Some(&ct)).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "INVALID_TOKEN"),
        "a checkToken is not an access token: {}",
        r.body
    );
}

// ---------------------------------------------------------------- one-step flow

async fn one_step(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let trigger = || rig.post("/auth/otp/trigger", json!({"phone": PHONE}));
    let t = trigger().await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.body["data"]["masked_phone"], "••• ••• ••50");
    let code = t.data_str("sandbox_otp");
    let v = rig.post("/auth/otp/verify", json!({"phone": PHONE, "otp": code})).await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["data"]["is_new_user"], true);
    let user_id = v.data_str("user_id");
    assert_eq!(jwt_claims(&v.data_str("access_token"))["sub"], user_id);
    assert_eq!(v.data_str("refresh_token").len(), 43);
    // The code is spent.
    let again = rig.post("/auth/otp/verify", json!({"phone": PHONE, "otp": code})).await;
    assert_eq!((again.status, again.code()), (403, "INVALID_OTP"), "{}", again.body);

    // Only the latest code counts: two triggers, the first code is dead.
    let first = trigger().await.data_str("sandbox_otp");
    let second = trigger().await.data_str("sandbox_otp");
    if first != second {
        let r = rig
            .post("/auth/otp/verify", json!({"phone": PHONE, "otp": first}))
            .await;
        assert_eq!((r.status, r.code()), (403, "INVALID_OTP"), "{}", r.body);
    }
    let v2 = rig
        .post("/auth/otp/verify", json!({"phone": PHONE, "otp": second}))
        .await;
    assert_eq!(v2.status, 200, "{}", v2.body);
    assert_eq!(v2.body["data"]["is_new_user"], false);
    assert_eq!(v2.data_str("user_id"), user_id, "the same user");
}

#[tokio::test]
async fn the_one_step_flow_creates_the_user_once_in_memory() {
    one_step(Store::Memory).await;
}

#[tokio::test]
async fn the_one_step_flow_creates_the_user_once_on_dynamodb() {
    one_step(Store::Dynamo).await;
}

#[tokio::test]
async fn five_wrong_one_step_codes_end_the_code() {
    let rig = Rig::start_with(Store::Memory, no_limits()).await;
    let t = rig.post("/auth/otp/trigger", json!({"phone": PHONE})).await;
    let code = t.data_str("sandbox_otp");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for i in 1..=4 {
        let r = rig
            .post("/auth/otp/verify", json!({"phone": PHONE, "otp": wrong}))
            .await;
        assert_eq!((r.status, r.code()), (403, "INVALID_OTP"), "attempt {i}: {}", r.body);
    }
    let r = rig
        .post("/auth/otp/verify", json!({"phone": PHONE, "otp": wrong}))
        .await;
    assert_eq!((r.status, r.code()), (403, "TOO_MANY_OTP_ATTEMPTS"), "{}", r.body);
    let r = rig.post("/auth/otp/verify", json!({"phone": PHONE, "otp": code})).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "TOO_MANY_OTP_ATTEMPTS"),
        "the right code is too late: {}",
        r.body
    );
    let r = rig
        .post("/auth/otp/verify", json!({"phone": "12345", "otp": code}))
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{}", r.body);
}
