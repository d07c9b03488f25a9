//! `POST /api/v1/account/oauth/link` (Bearer): links the idToken's Google or
//! Apple account; it can then sign in with `/auth/login/oauth`. Needs a
//! code proved in the last `FRESH_AUTH_SECONDS` (or `pin`), and an idToken
//! carrying a nonce from `POST /account/oauth/nonce` (`nonce`), used once.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::oauth::{self, LinkInput};
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/oauth/link";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [provider, id_token, nonce, pin] = body.strings(["provider", "idToken", "nonce", "pin"])?;
    let input = LinkInput {
        provider,
        id_token,
        nonce,
        pin,
    };
    let linked = oauth::link(app, bearer(req), input).await?;
    Ok(ok(app, "Provider linked", None, linked))
}

#[cfg(test)]
mod tests;
