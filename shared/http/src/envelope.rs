//! The one response envelope of SPEC §1.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use lambda_http::Body as LambdaBody;
use nambari_core::{App, Error};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{error, info};

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
    let status = e.status();
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
            if e.status() >= 500 {
                let cause = match &e {
                    Error::Internal(m) => m.clone(),
                    Error::Unavailable(source) => source.to_string(),
                    other => other.to_string(),
                };
                error!(code = e.code(), status = e.status(), cause = %cause, "request failed");
            } else {
                info!(code = e.code(), status = e.status(), "request refused");
            }
            error_response(app, &e)
        }
    }
}

/// The cookie that carries web clients' refresh tokens (SPEC §3).
pub const REFRESH_COOKIE: &str = "nambari_rt";

/// Adds the refresh-token cookie for a web client (`HttpOnly; Secure;
/// SameSite=Strict`, scoped to the token endpoints), or clears it on `None`.
pub fn set_refresh_cookie(res: &mut Response, token: Option<&str>, max_age: i64) {
    let value = match token {
        Some(t) => format!(
            "{REFRESH_COOKIE}={t}; Path=/api/v1/auth/token; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
        ),
        None => format!("{REFRESH_COOKIE}=; Path=/api/v1/auth/token; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(http::header::SET_COOKIE, v);
    }
}

/// The `data` every sign-in answers with (`accessToken`, `refreshToken`,
/// `expiresIn`, `onboarding`, plus `extra` fields), as a 200 with
/// `message`; a web client (`platform: WEB`) also gets the refresh cookie.
pub fn signed_in_data(
    app: &App,
    message: &str,
    user: &nambari_core::repo::User,
    tokens: &nambari_core::auth::Tokens,
    extra: Value,
) -> Response {
    let mut data = json!({
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token.expose(),
        "expiresIn": tokens.expires_in,
        "onboarding": user.flags(),
    });
    if let (Some(d), Value::Object(more)) = (data.as_object_mut(), extra) {
        d.extend(more);
    }
    let mut res = ok(app, message, None, data);
    if tokens.session.platform == Some(nambari_core::repo::Platform::Web) {
        set_refresh_cookie(
            &mut res,
            Some(tokens.refresh_token.expose()),
            nambari_core::tokens::REFRESH_TTL,
        );
    }
    res
}
