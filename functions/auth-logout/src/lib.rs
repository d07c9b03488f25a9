//! `POST /api/v1/auth/logout` (Bearer): revokes the session of the access
//! token (other devices stay signed in) and clears the web cookie.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_logout as flow;
use nambari_core::{App, Result};
use nambari_http::{Response, bearer, ok, respond, set_refresh_cookie};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/logout";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    flow::run(app, bearer(req)).await?;
    let mut res = ok(app, "Logged out", None, ());
    set_refresh_cookie(&mut res, None, 0);
    Ok(res)
}

#[cfg(test)]
mod tests;
