//! `POST /api/v1/account/pin/recovery/start` (Bearer): a forgotten PIN is
//! recovered with two codes at once — one to the account's verified email,
//! one to the phone — so the phone alone (a SIM swap) is not enough.
//! Answers a recoveryToken for `/account/pin/recovery/verify`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::pin_recovery;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, client_ip, locale, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/pin/recovery/start";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let ip = client_ip(req);
    let started = pin_recovery::start(app, bearer(req), locale(req), ip.as_deref()).await?;
    Ok(ok(app, "Codes sent to your email and your phone", None, started))
}

#[cfg(test)]
mod tests;
