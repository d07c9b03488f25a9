//! `POST /api/v1/auth/password/forgot/initiate`: a reset code to the phone.
//! Does not consume the checkToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_password_forgot_initiate as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, locale, ok, respond};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/password/forgot/initiate";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [check_token, device_id] = body.strings(["checkToken", "deviceId"])?;
    let ip = client_ip(req);
    let started = flow::run(app, flow::Request::parse(app, check_token, device_id, locale(req), ip)?).await?;
    let mut data = json!({
        "tempToken": started.temp_token,
        "resetToken": null,
        "maskedPhone": started.masked_phone,
        "accessToken": null,
        "expiresInSeconds": started.expires_in,
    });
    if let Some(code) = started.sandbox_otp {
        data["sandboxOtp"] = json!(code);
    }
    Ok(ok(app, "Password reset code sent to your phone", None, data))
}

#[cfg(test)]
mod tests;
