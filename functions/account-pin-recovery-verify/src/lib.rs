//! `POST /api/v1/account/pin/recovery/verify` (Bearer): the recoveryToken,
//! the email's code, the phone's code and the new PIN. Sets the PIN, ends
//! every session of the user and signs this device in afresh (new tokens),
//! and tells the email and the phone.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::account::AuthMethods;
use nambari_core::pin_recovery::{self, RecoverInput};
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, client_ip, respond, signed_in_data};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/pin/recovery/verify";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [recovery_token, email_otp, phone_otp, pin] = body.strings(["recoveryToken", "emailOtp", "phoneOtp", "pin"])?;
    let ip = client_ip(req);
    let input = RecoverInput {
        recovery_token,
        email_otp,
        phone_otp,
        pin,
        ip: ip.as_deref(),
    };
    let (user, tokens) = pin_recovery::verify(app, bearer(req), input).await?;
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
