//! `POST /api/v1/auth/password/forgot/verify-otp`: the reset code → a
//! resetToken (10 min). Consumes the tempToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::base::tokens::TokenKind;
use nambari_core::flows::auth_password_forgot_verify_otp as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, ok, respond};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/password/forgot/verify-otp";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [temp_token, otp] = body.strings(["tempToken", "otp"])?;
    let ip = client_ip(req);
    let reset_token = flow::run(app, flow::Request::parse(app, temp_token, otp, ip)?).await?;
    let data = json!({
        "tempToken": null,
        "resetToken": reset_token,
        "maskedPhone": null,
        "accessToken": null,
        "expiresInSeconds": TokenKind::Reset.ttl(),
    });
    Ok(ok(app, "Identity confirmed. Set your new password.", None, data))
}

#[cfg(test)]
mod tests;
