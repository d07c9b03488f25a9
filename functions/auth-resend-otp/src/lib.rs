//! `POST /api/v1/auth/resend-otp`: a new code on the same channel(s) and a
//! new tempToken; the old code and token die. 60 s cooldown, 5 per session.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::base::channel::Channel;
use nambari_core::flows::auth_resend_otp as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, idempotent, ok, respond};
use serde::Serialize;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/resend-otp";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResendData {
    temp_token: String,
    masked_identifier: String,
    channel: Channel,
    /// Resends left in this session.
    remaining_attempts: u32,
    /// Seconds the new code is valid.
    expires_in: i64,
    resend_available_after_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox_otp: Option<String>,
}

/// A repeated `Idempotency-Key` gets the first response, not a second code.
pub async fn handle(app: Arc<App>, req: Request) -> Response {
    idempotent(&app, &req, "resend-otp", async { respond(&app, run(&app, &req).await) }).await
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [temp_token] = body.strings(["tempToken"])?;
    let ip = client_ip(req);
    let sent = flow::run(app, flow::Request::parse(app, temp_token, ip)?).await?;
    let data = ResendData {
        temp_token: sent.temp_token,
        masked_identifier: sent.masked_destination,
        channel: sent.channel,
        remaining_attempts: sent.resends_left,
        expires_in: sent.expires_in,
        resend_available_after_seconds: sent.resend_after,
        sandbox_otp: sent.sandbox_otp,
    };
    Ok(ok(app, "OTP resent successfully", None, data))
}

#[cfg(test)]
mod tests;
