//! `POST /api/v1/auth/otp/verify`: phone + code → tokens and `is_new_user`
//! (the user is created on first use). 5 wrong codes end the code.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_otp_verify as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, ok, respond, set_session_cookies};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/otp/verify";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [phone, otp, device_id, device_name, platform] =
        body.strings(["phone", "otp", "device_id", "device_name", "platform"])?;
    let ip = client_ip(req);
    let raw = flow::Raw {
        phone,
        otp,
        device_id,
        device_name,
        platform,
        ip,
    };
    let mut signed = flow::run(app, flow::Request::parse(app, raw)?).await?;
    let tokens = signed.tokens.take();
    let mut res = ok(app, "Signed in", None, signed);
    if let Some(t) = &tokens {
        set_session_cookies(app, &mut res, t);
    }
    Ok(res)
}

#[cfg(test)]
mod tests;
