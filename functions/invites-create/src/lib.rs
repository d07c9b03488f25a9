//! `POST /api/v1/invites` (API key, scope `invites`): a WhatsApp (else SMS)
//! claim link to a number that is not a user; `invite.claimed` follows when
//! it finishes onboarding.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::invites_create as flow;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::{App, Result};
use nambari_http::{Body, Response, locale, ok};
use nambari_http::{bearer, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/invites";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    let result = match apikeys::authenticate(&app, bearer(&req), "invites").await {
        Ok(caller) => run(&app, &caller, &req).await,
        Err(e) => Err(e),
    };
    respond(&app, result)
}

async fn run(app: &App, caller: &Integrator, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [phone_number] = body.strings(["phone_number"])?;
    let request = flow::Request::parse(
        app,
        phone_number,
        body.value("metadata"),
        body.value("sandbox_mode"),
        locale(req),
    )?;
    let invited = flow::run(app, caller, request).await?;
    Ok(ok(app, "Invite sent", None, invited))
}

#[cfg(test)]
mod tests;
