//! `POST /api/v1/account/pin/recovery/start` (Bearer): a forgotten PIN is
//! recovered with two codes at once — one to the account's verified email,
//! one to the phone — so the phone alone (a SIM swap) is not enough.
//! Answers a recoveryToken for `/account/pin/recovery/verify`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_pin_recovery_start as flow;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, client_ip, locale, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/pin/recovery/start";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let ip = client_ip(req);
    let request = flow::Request {
        locale: locale(req),
        ip,
    };
    let started = flow::run(app, bearer(req), request).await?;
    Ok(ok(app, "Codes sent to your email and your phone", None, started))
}

#[cfg(test)]
mod tests;
