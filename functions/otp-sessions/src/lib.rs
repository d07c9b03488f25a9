//! `GET /api/v1/otp/sessions` (API key, scope `otp`): the key's own
//! sessions, newest first; filters `status`, `channel`, `sandbox`, `from`,
//! `to`; `limit` (1–100, default 20) and `cursor`. Never a code.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::otp_sessions as flow;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::{App, Result};
use nambari_http::{Response, ok, query_param};
use nambari_http::{bearer, respond};

pub const METHOD: &str = "GET";
pub const PATH: &str = "/api/v1/otp/sessions";

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
    let filter = flow::Request::parse(|name| query_param(req, name))?;
    let listed = flow::run(app, caller, filter).await?;
    Ok(ok(app, "OTP sessions", None, listed))
}

#[cfg(test)]
mod tests;
