//! `POST /api/v1/account/oauth/nonce` (Bearer): a single-use nonce (10
//! minutes) that the idToken of the caller's next `/account/oauth/link`
//! must carry. The app passes it to the provider's sign-in SDK.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_oauth_nonce as flow;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/oauth/nonce";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let nonce = flow::run(app, bearer(req)).await?;
    Ok(ok(app, "Nonce issued", None, nonce))
}

#[cfg(test)]
mod tests;
