//! `GET /api/v1/account/sessions` (Bearer): the signed-in devices, most
//! recently used first, the caller's marked `current`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_sessions_list as flow;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, ok, respond};
use serde_json::json;

pub const METHOD: &str = "GET";
pub const PATH: &str = "/api/v1/account/sessions";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let sessions = flow::run(app, bearer(req)).await?;
    Ok(ok(app, "Your sessions", None, json!({ "sessions": sessions })))
}

#[cfg(test)]
mod tests;
