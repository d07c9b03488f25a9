//! `POST /api/v1/auth/login/oauth`: checkToken + a Google or Apple idToken
//! of the linked account → tokens. `state` is echoed. Consumes the checkToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::oauth::{self, OAuthLoginInput};
use nambari_core::{App, Result};
use nambari_http::{Body, Response, respond, signed_in_data};
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
        nonce,
        device_id,
        device_name,
        platform,
        state,
    ] = body.strings([
        "checkToken",
        "provider",
        "idToken",
        "nonce",
        "deviceId",
        "deviceName",
        "platform",
        "state",
    ])?;
    if state.is_some_and(|s| s.len() > 512) {
        return Err(nambari_core::Error::field("state", "must be at most 512 characters"));
    }
    let input = OAuthLoginInput {
        check_token,
        provider,
        id_token,
        nonce,
        device_id,
        device_name,
        platform,
    };
    let (user, tokens) = oauth::login(app, input).await?;
    Ok(signed_in_data(
        app,
        "Login successful",
        &user,
        &tokens,
        json!({"state": state}),
    ))
}

#[cfg(test)]
mod tests;
