//! `POST /api/v1/auth/onboarding/primary`: name and birthdate complete the
//! account and issue the first tokens; under the minimum age the account is
//! blocked until the birthday given as `unblockDate`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::app::Needs;
use nambari_core::flows::auth_onboarding_primary as flow;
use nambari_core::model::claims::Tier;
use nambari_core::model::records::OnboardingFlags;
use nambari_core::{App, Result};
use nambari_http::{Body, BodyTokens, Response, ok, respond, set_session_cookies};
use serde::Serialize;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/onboarding/primary";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PrimaryData {
    access_token: Option<String>,
    /// `null` for a web session: the refresh token is in its cookie.
    refresh_token: Option<String>,
    /// The device's proof that it is known; `null` for a web session (cookie).
    device_token: Option<String>,
    account_tier: Option<Tier>,
    onboarding: Option<OnboardingFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<i64>,
    blocked: bool,
    unblock_date: Option<String>,
}

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [onboarding_token, first_name, last_name, birth_date] =
        body.strings(["onboardingToken", "firstName", "lastName", "birthDate"])?;
    let raw = flow::Raw {
        onboarding_token,
        first_name,
        last_name,
        birth_date,
    };
    let out = flow::run(app, flow::Request::parse(app, raw)?).await?;
    Ok(match out {
        flow::Onboarded::Complete { user, tier, tokens } => {
            let body = BodyTokens::of(&tokens);
            let data = PrimaryData {
                access_token: Some(tokens.access_token.clone()),
                refresh_token: body.refresh_token,
                device_token: body.device_token,
                account_tier: Some(tier),
                onboarding: Some(user.flags()),
                expires_in: Some(tokens.expires_in),
                blocked: false,
                unblock_date: None,
            };
            let mut res = ok(app, "Welcome to Nambari!", None, data);
            set_session_cookies(app, &mut res, &tokens);
            res
        }
        flow::Onboarded::Blocked { unblock_date } => {
            let data = PrimaryData {
                access_token: None,
                refresh_token: None,
                device_token: None,
                account_tier: None,
                onboarding: None,
                expires_in: None,
                blocked: true,
                unblock_date: Some(unblock_date),
            };
            ok(app, "Account blocked", Some("ACCOUNT_BLOCKED"), data)
        }
    })
}

#[cfg(test)]
mod tests;
