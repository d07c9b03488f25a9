//! `GET /api/v1/users?phone_number=+…` (API key, scope `users:read`): the
//! user of an E.164 number; a malformed number is a 422 (no guessing).

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::users_find as flow;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::{App, Result};
use nambari_http::{Response, ok, query_param};
use nambari_http::{bearer, respond};

pub const METHOD: &str = "GET";
pub const PATH: &str = "/api/v1/users";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    let result = match apikeys::authenticate(&app, bearer(&req), "users:read").await {
        Ok(caller) => run(&app, &caller, &req).await,
        Err(e) => Err(e),
    };
    respond(&app, result)
}

async fn run(app: &App, caller: &Integrator, req: &Request) -> Result<Response> {
    let user = flow::run(
        app,
        caller,
        flow::Request::parse(app, query_param(req, "phone_number"))?,
    )
    .await?;
    Ok(ok(app, "User found", None, user))
}

#[cfg(test)]
mod tests;
