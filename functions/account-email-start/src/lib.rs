//! `POST /api/v1/account/email/start` (Bearer): a code to the email to add;
//! 409 when another account has it.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::account;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, client_ip, locale, ok, respond};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/email/start";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [email] = body.strings(["email"])?;
    let ip = client_ip(req);
    let sent = account::email_start(app, bearer(req), email, locale(req), ip.as_deref()).await?;
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
