//! `POST /api/v1/auth/login/password`: phone (checkToken) + password. A
//! known device — one that presents its deviceToken (body, or the web
//! cookie) — is signed in; an unknown one gets VERIFY_DEVICE, a
//! deviceVerificationToken and a code. Consumes the checkToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_login_password as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, device_token, locale, respond, sign_in_response};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/login/password";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [
        check_token,
        password,
        device_id,
        device_token_field,
        device_name,
        platform,
    ] = body.strings([
        "checkToken",
        "password",
        "deviceId",
        "deviceToken",
        "deviceName",
        "platform",
    ])?;
    let raw = flow::Raw {
        check_token,
        password,
        device_id,
        device_token: device_token(req, device_token_field),
        device_name,
        platform,
        locale: locale(req),
        ip: client_ip(req),
    };
    let sign_in = flow::run(app, flow::Request::parse(app, raw)?).await?;
    Ok(sign_in_response(app, sign_in, serde_json::json!({})))
}

#[cfg(test)]
mod tests;
