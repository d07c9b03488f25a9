//! `POST /api/v1/auth/login/oauth`: checkToken + a Google or Apple idToken
//! of the linked account, carrying the checkToken's nonce (`oauthNonce` of
//! `/auth/check`) → tokens on a known device, VERIFY_DEVICE and a code on
//! an unknown one. `state` is echoed. Consumes the checkToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::oauth::{self, OAuthLoginInput};
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, device_token, locale, respond, sign_in_response};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/login/oauth";

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
    if state.is_some_and(|s| s.len() > 512) {
        return Err(nambari_core::Error::field("state", "must be at most 512 characters"));
    }
    let ip = client_ip(req);
    let input = OAuthLoginInput {
        check_token,
        provider,
        id_token,
        device_id,
        device_token: device_token(req, device_token_field),
        device_name,
        platform,
        locale: locale(req),
        ip: ip.as_deref(),
    };
    let sign_in = oauth::login(app, input).await?;
    Ok(sign_in_response(app, sign_in, json!({"state": state})))
}

#[cfg(test)]
mod tests;
