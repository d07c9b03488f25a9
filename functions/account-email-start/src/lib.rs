//! `POST /api/v1/account/email/start` (Bearer): a code to the email to add;
//! 409 when another account has it.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_email_start as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, client_ip, locale, ok, respond};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/email/start";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [email] = body.strings(["email"])?;
    let ip = client_ip(req);
    let sent = flow::run(app, bearer(req), flow::Request::parse(email, locale(req), ip)).await?;
    let mut data = json!({
        "tempToken": sent.temp_token,
        "maskedDestination": sent.masked_destination,
        "channel": sent.channel,
        "expiresInSeconds": sent.expires_in,
        "resendAvailableAfterSeconds": sent.resend_after,
    });
    if let Some(code) = sent.sandbox_otp {
        data["sandboxOtp"] = json!(code);
    }
    Ok(ok(app, "Verification code sent", None, data))
}

#[cfg(test)]
mod tests;
