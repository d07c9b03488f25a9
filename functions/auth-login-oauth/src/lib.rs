//! `POST /api/v1/auth/login/oauth`: checkToken + a Google or Apple idToken
//! of the linked account, carrying the checkToken's nonce (`oauthNonce` of
//! `/auth/check`) → tokens on a known device, VERIFY_DEVICE and a code on
//! an unknown one. `state` is echoed. Consumes the checkToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_login_oauth as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, device_token, locale, respond, sign_in_response};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/login/oauth";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [
        check_token,
        provider,
        id_token,
        device_id,
        device_token_field,
        device_name,
        platform,
        state,
    ] = body.strings([
        "checkToken",
        "provider",
        "idToken",
        "deviceId",
        "deviceToken",
        "deviceName",
        "platform",
        "state",
    ])?;
    let raw = flow::Raw {
        check_token,
        provider,
        id_token,
        device_id,
        device_token: device_token(req, device_token_field),
        device_name,
        platform,
        locale: locale(req),
        ip: client_ip(req),
        state,
    };
    let sign_in = flow::run(app, flow::Request::parse(app, raw)?).await?;
    Ok(sign_in_response(app, sign_in, json!({"state": state})))
}

#[cfg(test)]
mod tests;
