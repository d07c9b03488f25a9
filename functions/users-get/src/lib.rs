//! `GET /api/v1/users/{id}` (API key, scope `users:read`): `{id,
//! phone_number, country_code}`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::users_get as flow;
use nambari_core::services::apikeys::{self, Integrator};
use nambari_core::{App, Result};
use nambari_http::{Response, ok, path_param};
use nambari_http::{bearer, respond};

pub const METHOD: &str = "GET";
pub const PATH: &str = "/api/v1/users/{id}";

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
    let user = flow::run(app, caller, flow::Request::parse(path_param(req, "id"))?).await?;
    Ok(ok(app, "User found", None, user))
}

#[cfg(test)]
mod tests;
