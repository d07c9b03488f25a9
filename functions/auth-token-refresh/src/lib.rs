//! `POST /api/v1/auth/token/refresh`: exchanges a refresh token (body, or the
//! web cookie) for a new pair. A reused token revokes its session family.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::auth;
use nambari_core::repo::Platform;
use nambari_core::tokens::REFRESH_TTL;
use nambari_core::{App, Result};
use nambari_http::{Body, REFRESH_COOKIE, Response, cookie, ok, respond, set_refresh_cookie};
use serde::Serialize;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/token/refresh";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefreshData {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [from_body] = body.strings(["refreshToken"])?;
    let presented = from_body.or_else(|| cookie(req, REFRESH_COOKIE));
    let out = auth::refresh(app, presented).await?;
    let t = out.tokens;
    let data = RefreshData {
        access_token: t.access_token.clone(),
        refresh_token: t.refresh_token.expose().to_owned(),
        expires_in: t.expires_in,
    };
    let mut res = ok(app, "Token refreshed", None, data);
    if t.session.platform == Some(Platform::Web) {
        set_refresh_cookie(&mut res, Some(t.refresh_token.expose()), REFRESH_TTL);
    }
    Ok(res)
}

#[cfg(test)]
mod tests;
