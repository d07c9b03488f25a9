//! `DELETE /api/v1/account/oauth/{provider}` (Bearer): unlinks `GOOGLE` or
//! `APPLE`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_oauth_unlink as flow;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, ok, path_param, respond};

pub const METHOD: &str = "DELETE";
pub const PATH: &str = "/api/v1/account/oauth/{provider}";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let linked = flow::run(app, bearer(req), flow::Request::parse(path_param(req, "provider"))).await?;
    Ok(ok(app, "Provider unlinked", None, linked))
}

#[cfg(test)]
mod tests;
