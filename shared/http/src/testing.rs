//! Helpers for the function crates' handler tests (feature `test-util`):
//! the API Gateway v2 events of `events/<crate>/`, a handler's reply, and
//! assertions on the envelope (docs/API.md §1).
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;

use lambda_http::Request;
use lambda_http::http::HeaderMap;
use nambari_core::App;
use nambari_core::testing::TestApp;
use serde_json::{Value, json};

use crate::Response;

/// The event `events/<krate>/<name>.json` of the workspace, with each
/// `{{key}}` placeholder replaced by its value (all must be filled).
pub fn event(krate: &str, name: &str, vars: &[(&str, &str)]) -> Request {
    let path = format!("{}/../../events/{krate}/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (key, value) in vars {
        json = json.replace(&format!("{{{{{key}}}}}"), value);
    }
    assert!(!json.contains("{{"), "{krate}/{name}: a placeholder was left unfilled");
    lambda_http::request::from_str(&json)
        .unwrap_or_else(|e| panic!("{krate}/{name} is not an API Gateway v2 event: {e}"))
}

/// A handler's response: status, headers and the JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// `data.<field>` as a string.
    pub fn data_str(&self, field: &str) -> String {
        self.body["data"][field]
            .as_str()
            .unwrap_or_else(|| panic!("no data.{field} in {}", self.body))
            .to_owned()
    }
}

/// Runs `handler` on `req`.
pub async fn call<F, Fut>(handler: F, t: &TestApp, req: Request) -> Reply
where
    F: FnOnce(Arc<App>, Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let res = handler(t.app.clone(), req).await;
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: serde_json::from_slice(res.body().as_ref()).expect("a JSON body"),
    }
}

/// A 200 envelope with `action`: its `data`.
pub fn success<'a>(r: &'a Reply, action: Option<&str>) -> &'a Value {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    assert_eq!(r.body["httpStatus"], "OK");
    assert_eq!(r.body["action"], json!(action), "{}", r.body);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_action_time(&r.body);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["cache-control"], "no-store");
    &r.body["data"]
}

/// An error envelope with `status` and `code`; on 422 the names of the bad fields.
pub fn failure(r: &Reply, status: u16, code: &str) -> Vec<String> {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["success"], false, "{}", r.body);
    assert_eq!(r.body["httpStatus"], crate::envelope::reason(status), "{}", r.body);
    assert_eq!(r.body["code"], code, "{}", r.body);
    assert_action_time(&r.body);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["cache-control"], "no-store");
    if status == 422 {
        r.body["data"]
            .as_object()
            .expect("a field map")
            .keys()
            .cloned()
            .collect()
    } else {
        assert_eq!(r.body["data"], r.body["message"]);
        Vec::new()
    }
}

/// A signed-up user (primary onboarding done) and the tokens of its session.
pub struct SignedUp {
    pub user_id: String,
    pub phone: String,
    pub device_id: String,
    pub access_token: String,
    pub refresh_token: String,
    /// The device's proof that it is known (`deviceToken`).
    pub device_token: String,
}

/// Signs `phone` up on `device` through the domain flows (sandbox codes).
pub async fn sign_up(t: &TestApp, phone: &str, device: &str) -> SignedUp {
    use nambari_core::flows::{auth_check, auth_onboarding_primary, auth_passwordless_start, auth_verify_otp};
    let app = &t.app;
    let req = auth_check::Request::parse(app, Some(phone), Some(device), None).expect("check request");
    let checked = auth_check::run(app, req).await.expect("check");
    let req = auth_passwordless_start::Request::parse(
        app,
        Some(&checked.check_token),
        Some("SMS"),
        Some(device),
        "en".into(),
        None,
    )
    .expect("start request");
    let sent = auth_passwordless_start::run(app, req).await.expect("start");
    let code = sent.sandbox_otp.expect("sandbox code");
    let raw = auth_verify_otp::Raw {
        temp_token: Some(&sent.temp_token),
        otp: Some(&code),
        device_name: None,
        platform: None,
        ip: None,
    };
    let verified = auth_verify_otp::run(app, auth_verify_otp::Request::parse(app, raw).expect("verify request"))
        .await
        .expect("verify");
    let onboarding_token = match verified {
        auth_verify_otp::Verified::CollectPrimary { onboarding_token, .. } => onboarding_token,
        other => panic!("expected COLLECT_PRIMARY, got {other:?}"),
    };
    let raw = auth_onboarding_primary::Raw {
        onboarding_token: Some(&onboarding_token),
        first_name: Some("Asha"),
        last_name: Some("Mwangi"),
        birth_date: Some("1995-06-15"),
    };
    let req = auth_onboarding_primary::Request::parse(app, raw).expect("onboarding request");
    let done = auth_onboarding_primary::run(app, req).await.expect("onboarding");
    match done {
        auth_onboarding_primary::Onboarded::Complete { user, tokens, .. } => SignedUp {
            user_id: user.id.to_string(),
            phone: phone.to_owned(),
            device_id: device.to_owned(),
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.expose().to_owned(),
            device_token: tokens
                .device_token
                .as_ref()
                .map(|t| t.expose().to_owned())
                .unwrap_or_default(),
        },
        other => panic!("expected a complete onboarding, got {other:?}"),
    }
}

/// `action_time` is `YYYY-MM-DDTHH:MM:SS` (UTC, no offset).
pub fn assert_action_time(body: &Value) {
    let t = body["action_time"].as_str().expect("action_time");
    let shape: String = t.chars().map(|c| if c.is_ascii_digit() { 'D' } else { c }).collect();
    assert_eq!(shape, "DDDD-DD-DDTDD:DD:DD", "action_time {t}");
}

/// The `Set-Cookie` named `name` in `r`: its value and its attributes.
pub fn set_cookie(r: &Reply, name: &str) -> Option<(String, Vec<String>)> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let mut parts = c.split(';').map(str::trim);
            let value = parts.next()?.strip_prefix(&format!("{name}="))?.to_owned();
            Some((value, parts.map(str::to_owned).collect()))
        })
}

/// A web session's answer: the long-lived tokens are `null` in the body
/// (`refresh` names the body's refresh-token field) and travel as HttpOnly,
/// Secure, SameSite=Strict cookies. The refresh token of the cookie.
pub fn assert_web_session(r: &Reply, refresh: &str, with_device_token: bool) -> String {
    assert_eq!(r.body["data"][refresh], Value::Null, "{}", r.body);
    let (token, attributes) = set_cookie(r, crate::REFRESH_COOKIE).expect("the refresh cookie");
    assert_eq!(token.len(), 43, "{token}");
    for expected in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/v1/auth/token",
        "Max-Age=2592000",
    ] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} missing from {attributes:?}"
        );
    }
    if with_device_token {
        let (device, attributes) = set_cookie(r, crate::DEVICE_COOKIE).expect("the device cookie");
        assert_eq!(device.len(), 43, "{device}");
        for expected in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth"] {
            assert!(
                attributes.iter().any(|a| a == expected),
                "{expected} missing from {attributes:?}"
            );
        }
        let device_field = if refresh == "refresh_token" {
            "device_token"
        } else {
            "deviceToken"
        };
        assert_eq!(r.body["data"][device_field], Value::Null, "{}", r.body);
    }
    token
}
