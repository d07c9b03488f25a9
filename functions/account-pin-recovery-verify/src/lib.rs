//! `POST /api/v1/account/pin/recovery/verify` (Bearer): the recoveryToken,
//! the email's code, the phone's code and the new PIN. Sets the PIN, ends
//! every session of the user and signs this device in afresh (new tokens),
//! and tells the email and the phone.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_pin_recovery_verify as flow;
use nambari_core::services::profile::AuthMethods;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, client_ip, respond, signed_in_data};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/pin/recovery/verify";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [recovery_token, email_otp, phone_otp, pin] = body.strings(["recoveryToken", "emailOtp", "phoneOtp", "pin"])?;
    let ip = client_ip(req);
    let raw = flow::Raw {
        recovery_token,
        email_otp,
        phone_otp,
        pin,
        ip,
    };
    let (user, tokens) = flow::run(app, bearer(req), flow::Request::parse(app, raw)).await?;
    let methods = AuthMethods::of(&user);
    Ok(signed_in_data(
        app,
        "PIN reset; your other devices are signed out",
        &user,
        &tokens,
        json!({"authMethods": methods}),
    ))
}

#[cfg(test)]
mod tests;
