//! `POST /api/v1/auth/passwordless/channels`: the channels a code can be sent
//! to. Does not consume the checkToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_passwordless_channels as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, ok, respond};
use serde::Serialize;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/passwordless/channels";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

#[derive(Serialize)]
struct ChannelsData {
    channels: Vec<flow::ChannelOption>,
}

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [check_token, device_id] = body.strings(["checkToken", "deviceId"])?;
    let channels = flow::run(app, flow::Request::parse(app, check_token, device_id)?).await?;
    let action = if channels.len() > 1 {
        "SELECT_CHANNEL"
    } else {
        "PROCEED_TO_OTP"
    };
    Ok(ok(
        app,
        "Choose where to receive your code",
        Some(action),
        ChannelsData { channels },
    ))
}

#[cfg(test)]
mod tests;
