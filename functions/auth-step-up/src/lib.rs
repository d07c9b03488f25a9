//! `POST /api/v1/auth/step-up` (Bearer): PIN + scope → a stepUpToken (5 min),
//! checked once by an integrator with `/step-up/consume`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_step_up as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/step-up";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [pin, scope] = body.strings(["pin", "scope"])?;
    let stepped = flow::run(app, bearer(req), flow::Request::parse(pin, scope)).await?;
    Ok(ok(app, "Step-up granted", None, stepped))
}

#[cfg(test)]
mod tests;
