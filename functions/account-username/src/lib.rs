//! `PUT /api/v1/account/username` (Bearer): a unique, case-insensitive
//! username; a new access token with the `username` flag.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::account;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "PUT";
pub const PATH: &str = "/api/v1/account/username";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [username] = body.strings(["username"])?;
    let updated = account::set_username(app, bearer(req), username).await?;
    Ok(ok(app, "Username set", None, updated))
}

#[cfg(test)]
mod tests;
