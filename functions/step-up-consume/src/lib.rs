//! `POST /api/v1/step-up/consume` (API key, scope `step_up`): a user's
//! stepUpToken → the user and the scope the PIN allowed, once; 403
//! TOKEN_ALREADY_USED after.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::step_up_consume as flow;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::{App, Result};
use nambari_http::{Body, Response, ok};
use nambari_http::{bearer, respond};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/step-up/consume";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    let result = match apikeys::authenticate(&app, bearer(&req), "step_up").await {
        Ok(caller) => run(&app, &caller, &req).await,
        Err(e) => Err(e),
    };
    respond(&app, result)
}

async fn run(app: &App, caller: &Integrator, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [token] = body.strings(["token"])?;
    let consumed = flow::run(app, caller, flow::Request::parse(token)?).await?;
    Ok(ok(app, "Step-up confirmed", None, consumed))
}

#[cfg(test)]
mod tests;
