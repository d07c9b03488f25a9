//! The one response envelope (docs/API.md §1).

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use lambda_http::Body as LambdaBody;
use nambari_core::base::tokens::REFRESH_TTL;
use nambari_core::base::values::Platform;
use nambari_core::model::records::User;
use nambari_core::services::device_check::SignIn;
use nambari_core::services::sessions::Tokens;
use nambari_core::{App, Error};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{error, info};

use crate::status::status_of;

pub type Response = http::Response<LambdaBody>;

/// The `httpStatus` of an envelope with `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "CREATED",
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        409 => "CONFLICT",
        413 => "PAYLOAD_TOO_LARGE",
        422 => "UNPROCESSABLE_ENTITY",
        429 => "TOO_MANY_REQUESTS",
        502 => "BAD_GATEWAY",
        503 => "SERVICE_UNAVAILABLE",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

/// `action_time`: UTC, seconds precision, no offset.
fn action_time(app: &App) -> String {
    let t = app.clock.now();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A JSON response with the headers every auth response carries.
pub fn json_response(status: u16, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = http::Response::new(LambdaBody::Text(String::from_utf8_lossy(&bytes).into_owned()));
    *res.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A success envelope.
pub fn ok<T: Serialize>(app: &App, message: &str, action: Option<&str>, data: T) -> Response {
    let data = serde_json::to_value(data).unwrap_or(Value::Null);
    json_response(
        200,
        &json!({
            "success": true,
            "httpStatus": "OK",
            "message": message,
            "action": action,
            "action_time": action_time(app),
            "data": data,
        }),
    )
}

/// An error envelope: `data` is the message, or the field map for 422; 429
/// adds `retryAfter` and `Retry-After`. 5xx bodies are opaque.
pub fn error_response(app: &App, e: &Error) -> Response {
    let status = status_of(e);
    let message = e.to_string();
    let data = match e {
        Error::Validation(fields) => json!(fields),
        _ => Value::String(message.clone()),
    };
    let mut body = json!({
        "success": false,
        "httpStatus": reason(status),
        "message": message,
        "action_time": action_time(app),
        "code": e.code(),
        "data": data,
    });
    let retry = match e {
        Error::RateLimited { retry_after }
        | Error::ResendCooldown { retry_after }
        | Error::AccountLocked { retry_after } => Some(*retry_after),
        _ => None,
    };
    if let Some(r) = retry {
        body["retryAfter"] = json!(r);
    }
    let mut res = json_response(status, &body);
    if let Some(r) = retry
        && let Ok(v) = HeaderValue::from_str(&r.to_string())
    {
        res.headers_mut().insert(RETRY_AFTER, v);
    }
    res
}

/// Turns a handler's result into a response, logging errors: 5xx with
/// their cause (never returned), 4xx with their code only.
pub fn respond(app: &App, result: Result<Response, Error>) -> Response {
    match result {
        Ok(r) => r,
        Err(e) => {
            let status = status_of(&e);
            if status >= 500 {
                let cause = match &e {
                    Error::Internal(m) => m.clone(),
                    Error::Unavailable(source) => source.to_string(),
                    other => other.to_string(),
                };
                error!(code = e.code(), status, cause = %cause, "request failed");
            } else {
                info!(code = e.code(), status, "request refused");
            }
            error_response(app, &e)
        }
    }
}

/// The cookie that carries web clients' refresh tokens.
pub const REFRESH_COOKIE: &str = "nambari_rt";
/// The cookie that carries web clients' deviceTokens.
pub const DEVICE_COOKIE: &str = "nambari_dt";

/// Adds the refresh-token cookie for a web client (`HttpOnly; Secure;
/// SameSite=Strict`, scoped to the token endpoints), or clears it on `None`.
pub fn set_refresh_cookie(res: &mut Response, token: Option<&str>, max_age: i64) {
    set_cookie(res, REFRESH_COOKIE, "/api/v1/auth/token", token, max_age);
}

fn set_cookie(res: &mut Response, name: &str, path: &str, value: Option<&str>, max_age: i64) {
    let value = match value {
        Some(t) => format!("{name}={t}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"),
        None => format!("{name}=; Path={path}; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(http::header::SET_COOKIE, v);
    }
}

/// The long-lived tokens of a sign-in as a body carries them: for a web
/// session none (they live in HttpOnly cookies, out of reach of scripts),
/// for an app the refresh token and the new deviceToken.
pub struct BodyTokens {
    pub refresh_token: Option<String>,
    pub device_token: Option<String>,
}

impl BodyTokens {
    pub fn of(tokens: &Tokens) -> Self {
        if is_web(tokens) {
            return Self {
                refresh_token: None,
                device_token: None,
            };
        }
        Self {
            refresh_token: Some(tokens.refresh_token.expose().to_owned()),
            device_token: tokens.device_token.as_ref().map(|t| t.expose().to_owned()),
        }
    }
}

fn is_web(tokens: &Tokens) -> bool {
    tokens.session.platform == Some(Platform::Web)
}

/// For a web session, the cookies of `tokens`: the refresh token (scoped to
/// the token endpoints) and the deviceToken (scoped to the sign-in routes,
/// alive `DEVICE_TRUST_DAYS`). Nothing for an app.
pub fn set_session_cookies(app: &App, res: &mut Response, tokens: &Tokens) {
    if !is_web(tokens) {
        return;
    }
    set_refresh_cookie(res, Some(tokens.refresh_token.expose()), REFRESH_TTL);
    if let Some(d) = &tokens.device_token {
        set_cookie(
            res,
            DEVICE_COOKIE,
            "/api/v1/auth",
            Some(d.expose()),
            app.settings.device_trust,
        );
    }
}

/// The `data` every sign-in answers with (`accessToken`, `refreshToken`,
/// `deviceToken`, `expiresIn`, `onboarding`, plus `extra` fields), as a 200
/// with `message`; a web client gets the refresh and device tokens as
/// cookies, and `null` in their fields.
pub fn signed_in_data(app: &App, message: &str, user: &User, tokens: &Tokens, extra: Value) -> Response {
    let body = BodyTokens::of(tokens);
    let mut data = json!({
        "accessToken": tokens.access_token,
        "refreshToken": body.refresh_token,
        "deviceToken": body.device_token,
        "expiresIn": tokens.expires_in,
        "onboarding": user.flags(),
    });
    if let (Some(d), Value::Object(more)) = (data.as_object_mut(), extra) {
        d.extend(more);
    }
    let mut res = ok(app, message, None, data);
    set_session_cookies(app, &mut res, tokens);
    res
}

/// The answer to a first factor (password, Google, Apple): the tokens on a
/// known device, or `VERIFY_DEVICE` with the deviceVerificationToken (and
/// the code in sandbox mode) on an unknown one. `extra` joins either.
pub fn sign_in_response(app: &App, sign_in: SignIn, extra: Value) -> Response {
    match sign_in {
        SignIn::SignedIn { user, tokens } => {
            let mut more = json!({"requiresDeviceVerification": false, "deviceVerificationToken": null, "maskedDestination": null});
            if let (Some(m), Value::Object(e)) = (more.as_object_mut(), extra) {
                m.extend(e);
            }
            signed_in_data(app, "Login successful", &user, &tokens, more)
        }
        SignIn::VerifyDevice {
            device_verification_token,
            masked_destination,
            sandbox_otp,
            ..
        } => {
            let mut data = json!({
                "accessToken": null,
                "refreshToken": null,
                "deviceToken": null,
                "requiresDeviceVerification": true,
                "deviceVerificationToken": device_verification_token,
                "maskedDestination": masked_destination,
            });
            if let Some(code) = sandbox_otp {
                data["sandboxOtp"] = json!(code);
            }
            if let (Some(d), Value::Object(e)) = (data.as_object_mut(), extra) {
                d.extend(e);
            }
            ok(app, "Device verification required", Some("VERIFY_DEVICE"), data)
        }
    }
}
