//! `POST /api/v1/auth/passwordless-start`: consumes the checkToken, sends a
//! code over the chosen channel and returns the tempToken for verify-otp.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::base::channel::{Channel, Pipe};
use nambari_core::flows::auth_passwordless_start as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, idempotent, locale, ok, respond};
use serde::Serialize;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/passwordless-start";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartData {
    temp_token: String,
    masked_destination: String,
    channel: Channel,
    delivered_via: Vec<Pipe>,
    expires_in_seconds: i64,
    resend_available_after_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox_otp: Option<String>,
}

/// A repeated `Idempotency-Key` gets the first response, not a second code.
pub async fn handle(app: Arc<App>, req: Request) -> Response {
    idempotent(&app, &req, "passwordless-start", async {
        respond(&app, run(&app, &req).await)
    })
    .await
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [check_token, channel, device_id] = body.strings(["checkToken", "channel", "deviceId"])?;
    let ip = client_ip(req);
    let request = flow::Request::parse(app, check_token, channel, device_id, locale(req), ip)?;
    let sent = flow::run(app, request).await?;
    let data = StartData {
        temp_token: sent.temp_token,
        masked_destination: sent.masked_destination,
        channel: sent.channel,
        delivered_via: sent.delivered,
        expires_in_seconds: sent.expires_in,
        resend_available_after_seconds: sent.resend_after,
        sandbox_otp: sent.sandbox_otp,
    };
    Ok(ok(app, "Verification code sent", None, data))
}

#[cfg(test)]
mod tests;
