//! `POST /api/v1/account/email/verify` (Bearer): tempToken + the emailed
//! code; the email becomes the account's verified email (a login channel).

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::account;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, client_ip, ok, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/account/email/verify";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [temp_token, otp] = body.strings(["tempToken", "otp"])?;
    let ip = client_ip(req);
    let updated = account::email_verify(app, bearer(req), temp_token, otp, ip.as_deref()).await?;
    Ok(ok(app, "Email verified", None, updated))
}

#[cfg(test)]
mod tests;
