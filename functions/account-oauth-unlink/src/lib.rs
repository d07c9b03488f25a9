//! `DELETE /api/v1/account/oauth/{provider}` (Bearer): unlinks `GOOGLE` or
//! `APPLE`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::oauth;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, ok, path_param, respond};

pub const METHOD: &str = "DELETE";
pub const PATH: &str = "/api/v1/account/oauth/{provider}";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let linked = oauth::unlink(app, bearer(req), path_param(req, "provider")).await?;
    Ok(ok(app, "Provider unlinked", None, linked))
}

#[cfg(test)]
mod tests;
