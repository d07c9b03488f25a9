//! `POST /api/v1/otp/resend` (API key, scope `otp`): new codes on
//! `channels` (default: every unverified one), with the end-user cooldown
//! and resend count. `Idempotency-Key` honoured.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::otp_resend as flow;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::{App, Result};
use nambari_http::{Body, Response, locale, ok};
use nambari_http::{bearer, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/otp/resend";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

/// The API key first; then a repeated `Idempotency-Key` (scoped to the key)
/// gets the first response instead of a second send.
pub async fn handle(app: Arc<App>, req: Request) -> Response {
    let caller = match apikeys::authenticate(&app, bearer(&req), "otp").await {
        Ok(c) => c,
        Err(e) => return respond(&app, Err(e)),
    };
    let scope = format!("otp-resend:{}", caller.key_id);
    nambari_http::idempotent(&app, &req, &scope, async {
        respond(&app, run(&app, &caller, &req).await)
    })
    .await
}

async fn run(app: &App, caller: &Integrator, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [token] = body.strings(["token"])?;
    let sent = flow::run(
        app,
        caller,
        flow::Request::parse(token, body.value("channels"))?,
        &locale(req),
    )
    .await?;
    Ok(ok(app, "OTP resent", None, sent))
}

#[cfg(test)]
mod tests;
