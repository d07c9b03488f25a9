//! `POST /api/v1/account/device/verify`: deviceVerificationToken + the
//! code → tokens; the device becomes known. Consumes the token.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_device_verify as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, respond, signed_in_data};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/device/verify";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [token, otp] = body.strings(["deviceVerificationToken", "otp"])?;
    let ip = client_ip(req);
    let (user, tokens) = flow::run(app, flow::Request::parse(app, token, otp, ip)?).await?;
    Ok(signed_in_data(
        app,
        "Device verified",
        &user,
        &tokens,
        json!({"requiresDeviceVerification": false}),
    ))
}

#[cfg(test)]
mod tests;
