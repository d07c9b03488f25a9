//! `POST /api/v1/auth/token/refresh`: exchanges a refresh token (body, or the
//! web cookie) for a new pair. A reused token revokes its session family.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_token_refresh as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, BodyTokens, REFRESH_COOKIE, Response, cookie, ok, respond, set_session_cookies};
use serde::Serialize;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/token/refresh";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefreshData {
    access_token: String,
    /// `null` for a web session: the new refresh token is in its cookie.
    refresh_token: Option<String>,
    expires_in: i64,
}

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [from_body] = body.strings(["refreshToken"])?;
    let presented = from_body.or_else(|| cookie(req, REFRESH_COOKIE));
    let t = flow::run(app, flow::Request::parse(presented)?).await?;
    let data = RefreshData {
        access_token: t.access_token.clone(),
        refresh_token: BodyTokens::of(&t).refresh_token,
        expires_in: t.expires_in,
    };
    let mut res = ok(app, "Token refreshed", None, data);
    set_session_cookies(app, &mut res, &t);
    Ok(res)
}

#[cfg(test)]
mod tests;
