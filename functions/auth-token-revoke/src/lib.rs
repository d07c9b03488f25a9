//! `POST /api/v1/auth/token/revoke`: logs out by revoking the refresh token's
//! session (body, or the web cookie, which is cleared).

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_token_revoke as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, REFRESH_COOKIE, Response, cookie, ok, respond, set_refresh_cookie};

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/token/revoke";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [from_body] = body.strings(["refreshToken"])?;
    let from_cookie = cookie(req, REFRESH_COOKIE);
    flow::run(app, flow::Request::parse(from_body.or(from_cookie))?).await?;
    let mut res = ok(app, "Token revoked successfully", None, ());
    if from_cookie.is_some() {
        set_refresh_cookie(&mut res, None, 0);
    }
    Ok(res)
}

#[cfg(test)]
mod tests;
