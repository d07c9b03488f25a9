//! `GET /api/v1/account/sessions` (Bearer): the signed-in devices, most
//! recently used first, the caller's marked `current`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::account;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, ok, respond};
use serde_json::json;

pub const METHOD: &str = "GET";
pub const PATH: &str = "/api/v1/account/sessions";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let sessions = account::sessions(app, bearer(req)).await?;
    Ok(ok(app, "Your sessions", None, json!({ "sessions": sessions })))
}

#[cfg(test)]
mod tests;
