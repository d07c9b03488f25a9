//! `POST /api/v1/auth/otp/trigger`: the one-step flow. Sends a code to
//! `phone`; only the latest code is valid. `Idempotency-Key` honoured.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_otp_trigger as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, locale, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/otp/trigger";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

/// A repeated `Idempotency-Key` gets the first response, not a second code.
pub async fn handle(app: Arc<App>, req: Request) -> Response {
    nambari_http::idempotent(&app, &req, "otp-trigger", async {
        respond(&app, run(&app, &req).await)
    })
    .await
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [phone, device_id] = body.strings(["phone", "device_id"])?;
    let ip = client_ip(req);
    let sent = flow::run(app, flow::Request::parse(app, phone, device_id, locale(req), ip)?).await?;
    Ok(ok(app, "OTP sent", None, sent))
}

#[cfg(test)]
mod tests;
