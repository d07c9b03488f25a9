//! Recovering a forgotten PIN (`POST /account/pin/recovery/start` and
//! `/verify`, Bearer).
//!
//! The PIN guards step-up against whoever holds the phone number — a
//! SIM-swapper signs in with a code like the owner does — so a code to the
//! phone alone can never replace it. Recovery needs two codes at once: one
//! to the account's verified email and one to the phone. It sets the new
//! PIN, ends every session of the user (the session epoch moves on) and
//! opens a new one for the device that asked, and tells both channels.
//! An account without a verified email recovers its PIN through support.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::App;
use crate::account::signed_in;
use crate::attempts::Lockout;
use crate::auth::{DeviceInfo, NewOtp, Tokens, all_fields, check_code, field, open_otp, required, session_writes};
use crate::channel::{Channel, Pipe};
use crate::credentials::{hash_secret, parse_pin};
use crate::error::{Error, Result};
use crate::events::{Event, EventType, emit};
use crate::mask::{mask_email, mask_phone};
use crate::otp::OtpCode;
use crate::repo::{User, cred_key, user_key};
use crate::sender::{Notice, NoticeMessage};
use crate::table::{Cond, TableError, Update, Write};
use crate::tokens::{Claims, TokenKind};

/// The OTP purposes of the two codes.
pub const PURPOSE_EMAIL: &str = "pinrec_email";
pub const PURPOSE_PHONE: &str = "pinrec_phone";

/// Claims of a recoveryToken (`sub` is the user id): the two code
/// sessions it completes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryBody {
    pub email_sid: String,
    pub phone_sid: String,
}

/// What `/account/pin/recovery/start` sent.
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

/// Sends a code to the verified email and one to the phone.
pub async fn start(app: &App, token: Option<&str>, locale: String, ip: Option<&str>) -> Result<Started> {
    let p = signed_in(app, token).await?;
    let user = &p.user;
    if !user.has_pin {
        return Err(Error::PinNotSet);
    }
    let email = user.verified_email().ok_or(Error::NoVerifiedEmail)?.to_owned();
    let open = |purpose: &'static str, channel: Channel, destination: String| {
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
                locale: locale.clone(),
                ip,
                max_attempts: None,
            },
            Vec::new(),
            |_| None,
            Vec::new(),
        )
    };
    let by_email = open(PURPOSE_EMAIL, Channel::Email, email.clone()).await?;
    let by_phone = open(PURPOSE_PHONE, app.settings.primary_pipe().channel(), user.phone.clone()).await?;
    let now = app.now();
    let body = RecoveryBody {
        email_sid: by_email.session.session_id.clone(),
        phone_sid: by_phone.session.session_id.clone(),
    };
    let (recovery_token, _) = app.keys.issue(TokenKind::PinRecovery, user.id.as_str(), body, now)?;
    info!(user = %user.id, "PIN recovery codes sent");
    let sandbox = |o: &crate::auth::Opened| app.settings.sandbox.then(|| o.code.expose().to_owned());
    Ok(Started {
        recovery_token,
        masked_email: mask_email(&email),
        masked_phone: mask_phone(&user.phone),
        expires_in_seconds: app.settings.otp_ttl,
        sandbox_email_otp: sandbox(&by_email),
        sandbox_phone_otp: sandbox(&by_phone),
    })
}

/// A recovery's codes and new PIN.
pub struct RecoverInput<'a> {
    pub recovery_token: Option<&'a str>,
    pub email_otp: Option<&'a str>,
    pub phone_otp: Option<&'a str>,
    pub pin: Option<&'a str>,
    pub ip: Option<&'a str>,
}

fn code(v: Option<&str>, name: &str) -> Result<OtpCode> {
    required(v, name).and_then(|s| OtpCode::parse(s, 6, name))
}

/// Checks both codes, sets the new PIN, ends every session and opens a new
/// one for the caller's device. Consumes the recoveryToken's codes.
pub async fn verify(app: &App, token: Option<&str>, input: RecoverInput<'_>) -> Result<(User, Tokens)> {
    let p = signed_in(app, token).await?;
    let (mut tok, mut email_code, mut phone_code, mut pin) = (None, None, None, None);
    all_fields([
        field(&mut tok, required(input.recovery_token, "recoveryToken")),
        field(&mut email_code, code(input.email_otp, "emailOtp")),
        field(&mut phone_code, code(input.phone_otp, "phoneOtp")),
        field(&mut pin, parse_pin(input.pin, "pin")),
    ])?;
    let (Some(tok), Some(email_code), Some(phone_code), Some(pin)) = (tok, email_code, phone_code, pin) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let now = app.now();
    let claims: Claims<RecoveryBody> = app.keys.verify(TokenKind::PinRecovery, tok, now)?;
    if claims.sub != p.user.id.as_str() {
        return Err(Error::invalid_flow_token("This token cannot be used here"));
    }
    let phone = p.user.phone.clone();
    let by_email = check_code(
        app,
        PURPOSE_EMAIL,
        &phone,
        Some(&claims.body.email_sid),
        &email_code,
        Vec::new(),
        input.ip,
    )
    .await?;
    let by_phone = check_code(
        app,
        PURPOSE_PHONE,
        &phone,
        Some(&claims.body.phone_sid),
        &phone_code,
        Vec::new(),
        input.ip,
    )
    .await?;
    let hash = hash_secret(app, &pin).await?;
    let mut user = p.user.clone();
    let old_epoch = user.session_epoch;
    user.session_epoch = old_epoch.saturating_add(1);
    user.has_pin = true;
    let device = DeviceInfo {
        device_id: p.session.device_id.clone(),
        device_name: p.session.device_name.clone(),
        platform: p.session.platform,
    };
    let amr = vec![
        Channel::Email.amr().to_owned(),
        by_phone.session.channel.amr().to_owned(),
    ];
    let (writes, tokens) = session_writes(app, &user, &device, amr, now)?;
    let mut all = vec![
        by_email.consume,
        by_phone.consume,
        Write::Update {
            key: user_key(&user.id),
            ops: vec![
                Update::set("session_epoch", user.session_epoch),
                Update::set("has_pin", true),
            ],
            cond: Some(Cond::eq("session_epoch", old_epoch)),
        },
        Write::Update {
            key: cred_key(&user.id),
            ops: vec![Update::set("pin_hash", hash.as_str())],
            cond: None,
        },
        Lockout::pin(app, &user.id).clear(),
    ];
    all.extend(writes);
    app.db.transact(all).await.map_err(|e: TableError| {
        if e.failed_at(0) || e.failed_at(1) {
            Error::TokenAlreadyUsed
        } else if e.failed_at(2) {
            Error::invalid_flow_token("The account changed meanwhile. Start again")
        } else {
            Error::from(e)
        }
    })?;
    info!(user = %user.id, "PIN recovered: every other session revoked");
    let data = serde_json::json!({"reason": "pin_recovery", "all_sessions": true});
    emit(app, Event::new(EventType::SessionRevoked, Some(&user), data, now)).await;
    notify(
        app,
        &user,
        by_email.session.destination.as_str(),
        &by_phone.session.locale,
    )
    .await;
    Ok((user, tokens))
}

/// Tells the email and the phone that the PIN was reset (a failed notice
/// is logged; the reset stands).
async fn notify(app: &App, user: &User, email: &str, locale: &str) {
    for (pipe, to) in [(Pipe::Email, email), (Pipe::Sms, user.phone.as_str())] {
        let msg = NoticeMessage {
            pipe,
            to: to.to_owned(),
            notice: Notice::PinReset,
            locale: locale.to_owned(),
        };
        if let Err(e) = app.sender.send_notice(&msg).await {
            warn!(pipe = pipe.as_str(), error = %e, "PIN reset notice not delivered");
        }
    }
}
