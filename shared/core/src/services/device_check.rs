//! The second factor of a sign-in on a device the account does not know.
//!
//! A password (or a Google or Apple idToken) is never enough there: the
//! right first factor opens a `device` OTP session and answers
//! `VERIFY_DEVICE`; the code completes the sign-in and the device becomes
//! known. A device is known only when it presents the deviceToken it got
//! the last time it proved a code (the deviceId is a name the client
//! chose, which anyone can repeat), so a phished password and the victim's
//! deviceId are useless on the attacker's device.

use tracing::info;

use crate::App;
use crate::base::channel::Channel;
use crate::base::error::Result;
use crate::base::mask::mask_phone;
use crate::base::tokens::TokenKind;
use crate::base::values::Platform;
use crate::model::claims::DeviceVerificationBody;
use crate::model::keys::jti_key;
use crate::model::records::User;
use crate::model::table::Write;
use crate::ports::table::Tx;
use crate::services::otp_sessions::{NewOtp, Purpose, open_otp};
use crate::services::sessions::{DeviceInfo, Tokens};

/// The channel codes for device checks and resets go out on: the
/// deployment's primary pipe (SMS, or WhatsApp on a WhatsApp-first one).
pub fn primary_channel(app: &App) -> Channel {
    app.settings.primary_pipe().channel()
}

/// What a right first factor (password, Google, Apple) led to.
#[derive(Debug)]
pub enum SignIn {
    /// A known device: signed in.
    SignedIn { user: Box<User>, tokens: Box<Tokens> },
    /// An unknown device: a code went to the phone.
    VerifyDevice {
        device_verification_token: String,
        masked_destination: String,
        sandbox_otp: Option<String>,
        /// The platform the sign-in named (for the web cookie of the answer).
        platform: Option<Platform>,
    },
}

/// A right first factor (password, Google or Apple) on a device the account
/// does not know: what the code to the phone must complete.
pub struct DeviceCheck<'a> {
    pub user: &'a User,
    pub device: DeviceInfo,
    /// The first factor's `amr` (`pwd`, `oauth_google`, …).
    pub first_factor: &'static str,
    pub locale: String,
    pub ip: Option<&'a str>,
    /// The checkToken the sign-in consumes (given back when the code
    /// cannot be delivered).
    pub check_jti: &'a str,
}

/// Sends the device-verification code (in one transaction with `before`,
/// which uses up the checkToken) and answers `VERIFY_DEVICE`.
pub async fn device_check(app: &App, c: DeviceCheck<'_>, before: Tx) -> Result<SignIn> {
    let now = app.now();
    let user = c.user;
    let opened = open_otp(
        app,
        NewOtp {
            purpose: Purpose::Device,
            phone: &user.phone,
            country: &user.country,
            user_id: Some(user.id.clone()),
            device_id: &c.device.device_id,
            channel: primary_channel(app),
            destination: user.phone.clone(),
            locale: c.locale,
            ip: c.ip,
            max_attempts: None,
        },
        before,
        // A failed send gives the checkToken back.
        vec![Write::Delete {
            key: jti_key(c.check_jti),
            cond: None,
        }],
    )
    .await?;
    let dv = DeviceVerificationBody {
        phone: user.phone.clone(),
        uid: user.id.clone(),
        dname: c.device.device_name,
        plt: c.device.platform,
        first: Some(c.first_factor.to_owned()),
    };
    let (device_verification_token, _) = app.keys()?.issue_with_jti(
        TokenKind::DeviceVerification,
        user.id.as_str(),
        &opened.session.session_id,
        dv,
        now,
    )?;
    info!(user = %user.id, factor = c.first_factor, "first factor right on an unknown device: code sent");
    Ok(SignIn::VerifyDevice {
        device_verification_token,
        masked_destination: mask_phone(&user.phone),
        sandbox_otp: app.settings.sandbox.then(|| opened.code.expose().to_owned()),
        platform: c.device.platform,
    })
}
