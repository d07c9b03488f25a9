//! `POST /api/v1/otp/verify` (API key, scope `otp`): `{token, otps:
//! {channel: code}}`; each channel is verified on its own; the session goes
//! PENDING → PARTIAL → VERIFIED per its strategy, or FAILED / EXPIRED.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::otp_verify as flow;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::{App, Result};
use nambari_http::{Body, Response, ok};
use nambari_http::{bearer, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/otp/verify";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    let result = match apikeys::authenticate(&app, bearer(&req), "otp").await {
        Ok(caller) => run(&app, &caller, &req).await,
        Err(e) => Err(e),
    };
    respond(&app, result)
}

async fn run(app: &App, caller: &Integrator, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [token] = body.strings(["token"])?;
    let verified = flow::run(app, caller, flow::Request::parse(token, body.value("otps"))?).await?;
    Ok(ok(app, "OTP checked", None, verified))
}

#[cfg(test)]
mod tests;
