//! `POST /api/v1/account/oauth/link` (Bearer): links the idToken's Google or
//! Apple account; it can then sign in with `/auth/login/oauth`. Needs a
//! code proved in the last `FRESH_AUTH_SECONDS` (or `pin`), and an idToken
//! carrying a nonce from `POST /account/oauth/nonce` (`nonce`), used once.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_oauth_link as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/oauth/link";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [provider, id_token, nonce, pin] = body.strings(["provider", "idToken", "nonce", "pin"])?;
    let raw = flow::Raw {
        provider,
        id_token,
        nonce,
        pin,
    };
    let linked = flow::run(app, bearer(req), flow::Request::parse(raw)).await?;
    Ok(ok(app, "Provider linked", None, linked))
}

#[cfg(test)]
mod tests;
