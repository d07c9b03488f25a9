//! `DELETE /api/v1/account/sessions/{id}` (Bearer): revokes one of the
//! user's sessions; its refresh token fails at once.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_session_revoke as flow;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, ok, path_param, respond};

pub const METHOD: &str = "DELETE";
pub const PATH: &str = "/api/v1/account/sessions/{id}";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    flow::run(app, bearer(req), flow::Request::parse(path_param(req, "id"))).await?;
    Ok(ok(app, "Session revoked", None, ()))
}

#[cfg(test)]
mod tests;
