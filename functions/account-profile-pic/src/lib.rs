//! `PUT /api/v1/account/profile-pic` (Bearer): an `https://` URL (empty
//! clears it); a new access token with the `profilePic` flag.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_profile_pic as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "PUT";
pub const PATH: &str = "/api/v1/account/profile-pic";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [url] = body.strings(["profilePic"])?;
    let updated = flow::run(app, bearer(req), flow::Request::parse(url)).await?;
    Ok(ok(app, "Profile picture saved", None, updated))
}

#[cfg(test)]
mod tests;
