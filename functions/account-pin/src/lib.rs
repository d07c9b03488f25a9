//! `PUT /api/v1/account/pin` (Bearer): sets the PIN (4–6 digits, not a
//! trivial one); changing it needs `currentPin` or a fresh code.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_pin as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "PUT";
pub const PATH: &str = "/api/v1/account/pin";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [pin, current] = body.strings(["pin", "currentPin"])?;
    let set = flow::run(app, bearer(req), flow::Request::parse(pin, current)).await?;
    Ok(ok(app, "PIN set", None, set))
}

#[cfg(test)]
mod tests;
