//! `PUT /api/v1/account/interests` (Bearer): up to 20 interests; a new
//! access token with the `interests` flag.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_interests as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "PUT";
pub const PATH: &str = "/api/v1/account/interests";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let updated = flow::run(app, bearer(req), flow::Request::parse(body.value("interests"))).await?;
    Ok(ok(app, "Interests saved", None, updated))
}

#[cfg(test)]
mod tests;
