//! `POST /api/v1/account/pin/recovery/start` (Bearer): the first step of
//! recovering a forgotten PIN — a code to the account's verified email and
//! one to the phone, tied together by a recoveryToken.
//!
//! The PIN guards step-up against whoever holds the phone number — a
//! SIM-swapper signs in with a code like the owner does — so a code to the
//! phone alone can never replace it (see `account_pin_recovery_verify`).
//! An account without a verified email recovers its PIN through support.

use serde::Serialize;
use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::channel::Channel;
use crate::base::error::{Error, Result};
use crate::base::mask::{mask_email, mask_phone};
use crate::base::tokens::TokenKind;
use crate::model::claims::RecoveryBody;
use crate::ports::table::Tx;
use crate::services::otp_sessions::{NewOtp, Opened, Purpose, open_otp};
use crate::services::principal::signed_in;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

/// The request: the language of the messages and the client's IP.
pub struct Request {
    pub locale: String,
    pub ip: Option<String>,
}

/// What was sent.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub recovery_token: String,
    pub masked_email: String,
    pub masked_phone: String,
    pub expires_in_seconds: i64,
    /// The codes, in sandbox mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_email_otp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_phone_otp: Option<String>,
}

pub async fn run(app: &App, token: Option<&str>, req: Request) -> Result<Started> {
    let p = signed_in(app, token).await?;
    let user = &p.user;
    if !user.has_pin {
        return Err(Error::PinNotSet);
    }
    let email = user.verified_email().ok_or(Error::NoVerifiedEmail)?.to_owned();
    let open = |purpose: Purpose, channel: Channel, destination: String| {
        open_otp(
            app,
            NewOtp {
                purpose,
                phone: &user.phone,
                country: &user.country,
                user_id: Some(user.id.clone()),
                device_id: &p.session.device_id,
                channel,
                destination,
                locale: req.locale.clone(),
                ip: req.ip.as_deref(),
                max_attempts: None,
            },
            Tx::new(),
            Vec::new(),
        )
    };
    let by_email = open(Purpose::PinRecoveryEmail, Channel::Email, email.clone()).await?;
    let by_phone = open(
        Purpose::PinRecoveryPhone,
        app.settings.primary_pipe().channel(),
        user.phone.clone(),
    )
    .await?;
    let now = app.now();
    let body = RecoveryBody {
        email_sid: by_email.session.session_id.clone(),
        phone_sid: by_phone.session.session_id.clone(),
    };
    let (recovery_token, _) = app.keys()?.issue(TokenKind::PinRecovery, user.id.as_str(), body, now)?;
    info!(user = %user.id, "PIN recovery codes sent");
    let sandbox = |o: &Opened| app.settings.sandbox.then(|| o.code.expose().to_owned());
    Ok(Started {
        recovery_token,
        masked_email: mask_email(&email),
        masked_phone: mask_phone(&user.phone),
        expires_in_seconds: app.settings.otp_ttl,
        sandbox_email_otp: sandbox(&by_email),
        sandbox_phone_otp: sandbox(&by_phone),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_pin_without_a_verified_email_is_recovered_through_support() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        testing::set_pin(&t.app, &a, "1357").await;
        let req = Request {
            locale: "en".into(),
            ip: None,
        };
        let e = run(&t.app, Some(&a.access_token), req).await;
        assert_eq!(e.err().map(|e| e.code()), Some("NO_VERIFIED_EMAIL"));
    }

    #[tokio::test]
    async fn both_codes_go_out() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        testing::set_pin(&t.app, &a, "1357").await;
        testing::verify_email(&t, &a.access_token, "asha@example.com")
            .await
            .unwrap();
        let req = Request {
            locale: "en".into(),
            ip: None,
        };
        let out = run(&t.app, Some(&a.access_token), req).await.unwrap();
        assert!(out.sandbox_email_otp.is_some() && out.sandbox_phone_otp.is_some());
        assert!(t.sender.last_code_to("asha@example.com").is_some());
    }
}
