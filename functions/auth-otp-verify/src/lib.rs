//! `POST /api/v1/auth/otp/verify`: phone + code → tokens and `is_new_user`
//! (the user is created on first use). 5 wrong codes end the code.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::one_step::{self, OneStepVerifyInput};
use nambari_core::repo::Platform;
use nambari_core::tokens::REFRESH_TTL;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, ok, respond, set_refresh_cookie};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/otp/verify";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [phone, otp, device_id, device_name, platform] =
        body.strings(["phone", "otp", "device_id", "device_name", "platform"])?;
    let input = OneStepVerifyInput {
        phone,
        otp,
        device_id,
        device_name,
        platform,
    };
    let signed = one_step::verify(app, input).await?;
    let cookie = signed
        .tokens
        .as_ref()
        .filter(|t| t.session.platform == Some(Platform::Web))
        .map(|t| t.refresh_token.expose().to_owned());
    let mut res = ok(app, "Signed in", None, signed);
    if let Some(rt) = cookie {
        set_refresh_cookie(&mut res, Some(&rt), REFRESH_TTL);
    }
    Ok(res)
}

#[cfg(test)]
mod tests;
