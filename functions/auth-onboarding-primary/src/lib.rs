//! `POST /api/v1/auth/onboarding/primary`: name and birthdate complete the
//! account and issue the first tokens; under the minimum age the account is
//! blocked until the birthday given as `unblockDate`.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::auth::{self, Onboarded, PrimaryInput, Tier};
use nambari_core::repo::{OnboardingFlags, Platform};
use nambari_core::tokens::REFRESH_TTL;
use nambari_core::{App, Result};
use nambari_http::{Body, Response, ok, respond, set_refresh_cookie};
use serde::Serialize;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/onboarding/primary";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PrimaryData {
    access_token: Option<String>,
    refresh_token: Option<String>,
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
    let out = auth::onboard_primary(
        app,
        PrimaryInput {
            onboarding_token,
            first_name,
            last_name,
            birth_date,
        },
    )
    .await?;
    Ok(match out {
        Onboarded::Complete { user, tier, tokens } => {
            let data = PrimaryData {
                access_token: Some(tokens.access_token.clone()),
                refresh_token: Some(tokens.refresh_token.expose().to_owned()),
                account_tier: Some(tier),
                onboarding: Some(user.flags()),
                expires_in: Some(tokens.expires_in),
                blocked: false,
                unblock_date: None,
            };
            let mut res = ok(app, "Welcome to Nambari!", None, data);
            if tokens.session.platform == Some(Platform::Web) {
                set_refresh_cookie(&mut res, Some(tokens.refresh_token.expose()), REFRESH_TTL);
            }
            res
        }
        Onboarded::Blocked { unblock_date } => {
            let data = PrimaryData {
                access_token: None,
                refresh_token: None,
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
