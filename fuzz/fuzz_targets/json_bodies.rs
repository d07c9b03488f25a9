//! Any bytes as a request body, through the HTTP edge's parser and every
//! domain parser of a body field: a value or an error, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nambari_core::testing::TestApp;
use nambari_http::Body;

fn app() -> &'static TestApp {
    static APP: OnceLock<TestApp> = OnceLock::new();
    APP.get_or_init(nambari_core::testing::app)
}

/// Every field name an endpoint reads as a string.
const FIELDS: [&str; 24] = [
    "identifier", "deviceId", "checkToken", "channel", "tempToken", "otp", "deviceName", "platform",
    "onboardingToken", "firstName", "lastName", "birthDate", "refreshToken", "password", "newPassword",
    "confirmPassword", "currentPassword", "pin", "scope", "username", "bio", "profilePic", "email", "phone",
];

fuzz_target!(|data: &[u8]| {
    let Ok(body) = Body::from_bytes(data) else { return };
    let app = &app().app;
    let obj = body.object();
    let _ = nambari_core::flows::integrator::parse_send(app, obj);
    let _ = nambari_core::flows::integrator::parse_otps(body.value("otps"));
    let _ = nambari_core::flows::integrator::parse_metadata(body.value("metadata"));
    let _ = nambari_core::flows::account::parse_interests(body.value("interests"));
    let get = |k: &str| obj.get(k).and_then(serde_json::Value::as_str);
    let _ = nambari_core::flows::integrator::parse_filter(|k| get(k));
    for f in FIELDS {
        let Ok([v]) = body.strings([f]) else { continue };
        let _ = nambari_core::flows::auth::parse_phone(app, v.unwrap_or(""), f);
        let _ = nambari_core::flows::account::parse_username(v);
        let _ = nambari_core::flows::account::parse_email(v);
        let _ = nambari_core::flows::account::parse_bio(v);
        let _ = nambari_core::flows::account::parse_picture_url(v);
        let _ = nambari_core::flows::credentials::parse_password(v, f);
        let _ = nambari_core::flows::credentials::parse_pin(v, f);
        let _ = nambari_core::flows::credentials::parse_scope(v);
        let _ = nambari_core::base::channel::Channel::parse(v.unwrap_or(""));
        let _ = nambari_core::base::ids::DeviceId::parse(v.unwrap_or(""));
        let _ = nambari_core::base::otp::OtpCode::parse(v.unwrap_or(""), 6, f);
        let _ = nambari_core::base::tokens::RefreshToken::parse(v.unwrap_or(""));
        let _ = nambari_core::base::tokens::DeviceToken::parse(v.unwrap_or(""));
        let _ = nambari_core::base::values::Provider::parse(v.unwrap_or(""), f);
        let _ = nambari_core::base::values::Platform::parse(v.unwrap_or(""));
        let _ = nambari_core::flows::integrator::parse_time(v.unwrap_or(""), f);
    }
});
