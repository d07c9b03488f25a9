//! `POST /api/v1/auth/password/forgot/reset`: the new password. Every
//! session of the user is revoked; the reset's device is signed in afresh.
//! Consumes the resetToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_password_forgot_reset as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, respond, signed_in_data};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/password/forgot/reset";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [reset_token, new_password, confirm, device_name, platform] =
        body.strings(["resetToken", "newPassword", "confirmPassword", "deviceName", "platform"])?;
    let raw = flow::Raw {
        reset_token,
        new_password,
        confirm,
        device_name,
        platform,
    };
    let (user, tokens) = flow::run(app, flow::Request::parse(app, raw)?).await?;
    Ok(signed_in_data(
        app,
        "Password updated. All other sessions signed out.",
        &user,
        &tokens,
        json!({"resetToken": null, "maskedPhone": null, "expiresInSeconds": tokens.expires_in}),
    ))
}

#[cfg(test)]
mod tests;
