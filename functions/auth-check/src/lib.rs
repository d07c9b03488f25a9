//! `POST /api/v1/auth/check`: the entry point of every flow. Tells whether
//! the phone is registered and returns a checkToken bound to phone and device.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_check as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, ok, respond};
use serde::Serialize;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/check";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthMethods {
    passwordless: bool,
    password: bool,
    google: bool,
    apple: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckData {
    exists: bool,
    check_token: String,
    primary_complete: bool,
    masked_phone: Option<String>,
    auth_methods: Option<AuthMethods>,
    /// The nonce a Google or Apple idToken must carry to sign in with this
    /// checkToken.
    oauth_nonce: String,
}

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [identifier, device_id] = body.strings(["identifier", "deviceId"])?;
    let ip = client_ip(req);
    let out = flow::run(app, flow::Request::parse(app, identifier, device_id, ip)?).await?;
    let (action, message) = match &out.user {
        None => ("REGISTER", "Phone number not registered"),
        Some(u) if u.primary_complete => ("LOGIN", "Welcome back"),
        Some(_) => ("CONTINUE_ONBOARDING", "Continue setting up your account"),
    };
    let data = CheckData {
        exists: out.user.is_some(),
        check_token: out.check_token,
        primary_complete: out.user.as_ref().is_some_and(|u| u.primary_complete),
        masked_phone: out.user.as_ref().map(|_| out.phone.masked()),
        auth_methods: out.user.as_ref().map(|u| AuthMethods {
            passwordless: true,
            password: u.has_password,
            google: u.google,
            apple: u.apple,
        }),
        oauth_nonce: out.oauth_nonce,
    };
    Ok(ok(app, message, Some(action), data))
}

#[cfg(test)]
mod tests;
