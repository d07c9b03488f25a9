//! `PUT /api/v1/account/bio` (Bearer): up to 300 characters (empty clears
//! it); a new access token with the `bio` flag.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_bio as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "PUT";
pub const PATH: &str = "/api/v1/account/bio";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [bio] = body.strings(["bio"])?;
    let updated = flow::run(app, bearer(req), flow::Request::parse(bio)).await?;
    Ok(ok(app, "Bio saved", None, updated))
}

#[cfg(test)]
mod tests;
