//! `PUT /api/v1/account/bio` (Bearer): up to 300 characters (empty clears
//! it); a new access token with the `bio` flag.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::account;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "PUT";
pub const PATH: &str = "/api/v1/account/bio";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [bio] = body.strings(["bio"])?;
    let updated = account::set_bio(app, bearer(req), bio).await?;
    Ok(ok(app, "Bio saved", None, updated))
}

#[cfg(test)]
mod tests;
