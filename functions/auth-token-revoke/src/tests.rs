//! `handle` driven by the API Gateway v2 events in `events/auth-token-revoke/`.

use lambda_http::Request;
use lambda_http::http::HeaderMap;
use nambari_core::auth::{self, Onboarded, PrimaryInput, StartInput, Tokens, Verified, VerifyInput};
use nambari_core::testing::{self, TestApp};
use serde_json::{Value, json};

use super::handle;

const TEST_PHONE: &str = "+15555550100";
const TEST_CODE: &str = "123456";
const DEVICE: &str = "android-uuid-abc123";

/// The event `events/auth-token-revoke/<name>.json` with `{{key}}` placeholders filled in.
fn event(name: &str, vars: &[(&str, &str)]) -> Request {
    let path = format!(
        "{}/../../events/auth-token-revoke/{name}.json",
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
    let r = send(&t, event("ok", &[("refreshToken", token)])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "Token revoked successfully");
    assert_eq!(r.body["action_time"], "2026-04-03T10:30:45");
    assert_eq!(*data, Value::Null);
    assert!(r.headers.get("set-cookie").is_none());
    let e = auth::refresh(&t.app, Some(token)).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn revoking_an_already_revoked_token_is_a_401_invalid_token() {
    let t = testing::app();
    let tokens = sign_up(&t, "ANDROID").await;
    let token = tokens.refresh_token.expose();
    success(&send(&t, event("ok", &[("refreshToken", token)])).await, None);
    let r = send(&t, event("ok", &[("refreshToken", token)])).await;
    failure(&r, 401, "UNAUTHORIZED", "INVALID_TOKEN");
}

#[tokio::test]
async fn revoking_one_session_leaves_the_other_devices_signed_in() {
    let t = testing::app();
    let first = sign_up(&t, "ANDROID").await;
    let second = sign_in(&t, "IOS").await;
    assert_ne!(first.session.sid, second.session.sid);
    let r = send(&t, event("ok", &[("refreshToken", first.refresh_token.expose())])).await;
    success(&r, None);
    assert!(auth::refresh(&t.app, Some(second.refresh_token.expose())).await.is_ok());
}

#[tokio::test]
async fn web_logout_by_cookie_revokes_and_clears_the_cookie() {
    let t = testing::app();
    let tokens = sign_up(&t, "WEB").await;
    let token = tokens.refresh_token.expose();
    let r = send(&t, event("cookie", &[("refreshToken", token)])).await;
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
    assert_eq!(e.status(), 401);
}

#[tokio::test]
async fn garbage_refresh_token_is_a_401_invalid_token() {
    let t = testing::app();
    let r = send(&t, event("garbage-token", &[])).await;
    failure(&r, 401, "UNAUTHORIZED", "INVALID_TOKEN");
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    let t = testing::app();
    let tokens = sign_up(&t, "ANDROID").await;
    let r = send(
        &t,
        event("invalid-json", &[("refreshToken", tokens.refresh_token.expose())]),
    )
    .await;
    failure(&r, 400, "BAD_REQUEST", "INVALID_JSON");
    // The token is untouched.
    assert!(auth::refresh(&t.app, Some(tokens.refresh_token.expose())).await.is_ok());
}
