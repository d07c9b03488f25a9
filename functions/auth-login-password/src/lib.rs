//! `POST /api/v1/auth/login/password`: phone (checkToken) + password. A
//! known device is signed in; an unknown one gets VERIFY_DEVICE, a
//! deviceVerificationToken and a code. Consumes the checkToken.

use std::sync::Arc;

use lambda_http::Request;
use nambari_core::password::{self, PasswordLogin, PasswordLoginInput};
use nambari_core::{App, Result};
use nambari_http::{Body, Response, client_ip, locale, ok, respond, signed_in_data};
use serde_json::json;

pub const METHOD: &str = "POST";
pub const PATH: &str = "/api/v1/auth/login/password";

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    respond(&app, run(&app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response> {
    let body = Body::parse(req)?;
    let [check_token, password, device_id, device_name, platform] =
        body.strings(["checkToken", "password", "deviceId", "deviceName", "platform"])?;
    let ip = client_ip(req);
    let input = PasswordLoginInput {
        check_token,
        password,
        device_id,
        device_name,
        platform,
        locale: locale(req),
        ip: ip.as_deref(),
    };
    Ok(match password::login(app, input).await? {
        PasswordLogin::SignedIn { user, tokens } => signed_in_data(
            app,
            "Login successful",
            &user,
            &tokens,
            json!({"requiresDeviceVerification": false, "deviceVerificationToken": null, "maskedDestination": null}),
        ),
        PasswordLogin::VerifyDevice {
            device_verification_token,
            masked_destination,
            sandbox_otp,
        } => {
            let mut data = json!({
                "accessToken": null,
                "refreshToken": null,
                "requiresDeviceVerification": true,
                "deviceVerificationToken": device_verification_token,
                "maskedDestination": masked_destination,
            });
            if let Some(code) = sandbox_otp {
                data["sandboxOtp"] = json!(code);
            }
            ok(app, "Device verification required", Some("VERIFY_DEVICE"), data)
        }
    })
}

#[cfg(test)]
mod tests;
