//! `POST /api/v1/account/oauth/link` (Bearer): links the idToken's Google or
//! Apple account; it can then sign in with `/auth/login/oauth`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::oauth;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/oauth/link";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [provider, id_token, nonce] = body.strings(["provider", "idToken", "nonce"])?;
    let linked = oauth::link(app, bearer(req), provider, id_token, nonce).await?;
    Ok(ok(app, "Provider linked", None, linked))
}

#[cfg(test)]
mod tests;
