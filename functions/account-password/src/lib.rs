//! `PUT /api/v1/account/password` (Bearer): sets the password; changing it
//! needs `currentPassword` or a code proved in the last `FRESH_AUTH_SECONDS`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::account_password as flow;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, bearer, ok, respond};

pub const METHOD: &str = "PUT";
pub const PATH: &str = "/api/v1/account/password";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [new_password, confirm, current] = body.strings(["newPassword", "confirmPassword", "currentPassword"])?;
    let raw = flow::Raw {
        new_password,
        confirm,
        current,
    };
    let set = flow::run(app, bearer(req), flow::Request::parse(raw)).await?;
    Ok(ok(app, "Password set", None, set))
}

#[cfg(test)]
mod tests;
