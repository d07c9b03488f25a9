//! `PUT /api/v1/account/interests` (Bearer): up to 20 interests; a new
//! access token with the `interests` flag.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::account;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "PUT";
pub const PATH: &str = "/api/v1/account/interests";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let updated = account::set_interests(app, bearer(req), body.value("interests")).await?;
    Ok(ok(app, "Interests saved", None, updated))
}

#[cfg(test)]
mod tests;
