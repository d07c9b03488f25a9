//! `GET /api/v1/otp/sessions` (API key, scope `otp`): the key's own
//! sessions, newest first; filters `status`, `channel`, `sandbox`, `from`,
//! `to`; `limit` (1–100, default 20) and `cursor`. Never a code.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::apikeys::{self, Integrator};
use nambari_core::integrator;
use nambari_core::{App, Result};
use nambari_http::{Response, ok, query_param};
use nambari_http::{bearer, respond};

pub const METHOD: &str = "GET";
pub const PATH: &str = "/api/v1/otp/sessions";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    let result = match apikeys::authenticate(&app, bearer(&req), "otp").await {
        Ok(caller) => run(&app, &caller, &req).await,
        Err(e) => Err(e),
    };
    respond(&app, result)
}

async fn run(app: &App, caller: &Integrator, req: &Request) -> Result<Response> {
    let filter = integrator::parse_filter(|name| query_param(req, name))?;
    let listed = integrator::list(app, caller, filter).await?;
    Ok(ok(app, "OTP sessions", None, listed))
}

#[cfg(test)]
mod tests;
