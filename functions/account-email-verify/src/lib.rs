//! `POST /api/v1/account/email/verify` (Bearer): tempToken + the emailed
//! code; the email becomes the account's verified email (a login channel).

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_email_verify as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, client_ip, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/email/verify";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [temp_token, otp] = body.strings(["tempToken", "otp"])?;
    let ip = client_ip(req);
    let updated = flow::run(app, bearer(req), flow::Request::parse(app, temp_token, otp, ip)).await?;
    Ok(ok(app, "Email verified", None, updated))
}

#[cfg(test)]
mod tests;
