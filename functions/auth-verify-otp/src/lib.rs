//! `POST /api/v1/auth/verify-otp`: checks the code. A returning user gets
//! tokens; a new or unfinished one gets an onboardingToken (COLLECT_PRIMARY).
//! Consumes the tempToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_verify_otp as flow;
use nambari_core::model::records::OnboardingFlags;
use nambari_core::{App, Result};
use nambari_http::{Body, BodyTokens, Response, client_ip, ok, respond, set_session_cookies};
use serde::Serialize;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/verify-otp";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyData {
    access_token: Option<String>,
    /// `null` for a web session: the refresh token is in its cookie.
    refresh_token: Option<String>,
    /// The device's proof that it is known; `null` for a web session (cookie).
    device_token: Option<String>,
    onboarding_token: Option<String>,
    primary_complete: bool,
    onboarding: Option<OnboardingFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unblock_date: Option<String>,
}

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [temp_token, otp, device_name, platform] = body.strings(["tempToken", "otp", "deviceName", "platform"])?;
    let ip = client_ip(req);
    let raw = flow::Raw {
        temp_token,
        otp,
        device_name,
        platform,
        ip,
    };
    let verified = flow::run(app, flow::Request::parse(app, raw)?).await?;
    Ok(match verified {
        flow::Verified::SignedIn { user, tokens } => {
            let body = BodyTokens::of(&tokens);
            let data = VerifyData {
                access_token: Some(tokens.access_token.clone()),
                refresh_token: body.refresh_token,
                device_token: body.device_token,
                onboarding_token: None,
                primary_complete: true,
                onboarding: Some(user.flags()),
                expires_in: Some(tokens.expires_in),
                blocked: None,
                unblock_date: None,
            };
            let mut res = ok(app, "Welcome back", None, data);
            set_session_cookies(app, &mut res, &tokens);
            res
        }
        flow::Verified::CollectPrimary {
            onboarding_token,
            flags,
        } => {
            let data = VerifyData {
                access_token: None,
                refresh_token: None,
                device_token: None,
                onboarding_token: Some(onboarding_token),
                primary_complete: false,
                onboarding: Some(flags),
                expires_in: None,
                blocked: None,
                unblock_date: None,
            };
            ok(
                app,
                "Phone verified. Let us set up your account.",
                Some("COLLECT_PRIMARY"),
                data,
            )
        }
        flow::Verified::Blocked { unblock_date } => {
            let data = VerifyData {
                access_token: None,
                refresh_token: None,
                device_token: None,
                onboarding_token: None,
                primary_complete: false,
                onboarding: None,
                expires_in: None,
                blocked: Some(true),
                unblock_date: Some(unblock_date),
            };
            ok(app, "Account blocked", Some("ACCOUNT_BLOCKED"), data)
        }
    })
}

#[cfg(test)]
mod tests;
