//! `GET /api/v1/account/me` (Bearer): profile, sign-in methods and
//! onboarding flags.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_me as flow;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, ok, respond};

pub const METHOD: &str = "GET";
pub const PATH: &str = "/api/v1/account/me";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let profile = flow::run(app, bearer(req)).await?;
    Ok(ok(app, "Your account", None, profile))
}

#[cfg(test)]
mod tests;
