//! `POST /api/v1/account/pin/recovery/verify` (Bearer): both recovery
//! codes and the new PIN. Sets the PIN, ends every session of the user
//! (the session epoch moves on), opens a new one for the device that asked,
//! and tells the email and the phone.

use tracing::{info, warn};

use crate::App;
use crate::app::Needs;
use crate::base::channel::{Channel, Pipe};
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::otp::OtpCode;
use crate::base::tokens::{Claims, TokenKind};
use crate::base::values::Pin;
use crate::model::claims::RecoveryBody;
use crate::model::keys::{cred_key, user_key};
use crate::model::records::User;
use crate::model::table::{Cond, Update, Write};
use crate::ports::events::{Event, EventType};
use crate::ports::sender::{Notice, NoticeMessage};
use crate::ports::table::Tx;
use crate::services::credentials::Lockout;
use crate::services::events::emit;
use crate::services::flow_tokens::already_used;
use crate::services::otp_sessions::{Purpose, check_code};
use crate::services::principal::signed_in;
use crate::services::secret_hash::hash_secret;
use crate::services::sessions::{DeviceInfo, Tokens, session_writes};

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    senders: true,
    events: true,
    ..Needs::NOTHING
};

/// The request as the client sent it.
pub struct Raw<'a> {
    pub recovery_token: Option<&'a str>,
    pub email_otp: Option<&'a str>,
    pub phone_otp: Option<&'a str>,
    pub pin: Option<&'a str>,
    pub ip: Option<String>,
}

/// The request, checked: two 6-digit codes and a new PIN.
pub struct Request {
    pub recovery: Claims<RecoveryBody>,
    pub email_code: OtpCode,
    pub phone_code: OtpCode,
    pub pin: Pin,
    pub ip: Option<String>,
}

fn code(v: Option<&str>, name: &str) -> Result<OtpCode> {
    required(v, name).and_then(|s| OtpCode::parse(s, 6, name))
}

impl Request {
    pub fn parse(app: &App, raw: Raw<'_>) -> Result<Self> {
        let (tok, email_code, phone_code, pin) = (
            required(raw.recovery_token, "recoveryToken"),
            code(raw.email_otp, "emailOtp"),
            code(raw.phone_otp, "phoneOtp"),
            Pin::new_choice(raw.pin, "pin"),
        )
            .all()?;
        let recovery = app.keys()?.verify(TokenKind::PinRecovery, tok, app.now())?;
        Ok(Self {
            recovery,
            email_code,
            phone_code,
            pin,
            ip: raw.ip,
        })
    }
}

/// The access token is checked first (no token is a 401, whatever the
/// body). Uses the recoveryToken's codes up.
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<(User, Tokens)> {
    let p = signed_in(app, token).await?;
    let req = req?;
    let now = app.now();
    let claims = req.recovery;
    if claims.sub != p.user.id.as_str() {
        return Err(Error::invalid_flow_token("This token cannot be used here"));
    }
    let phone = p.user.phone.clone();
    let ip = req.ip.as_deref();
    let by_email = check_code(
        app,
        Purpose::PinRecoveryEmail,
        &phone,
        Some(&claims.body.email_sid),
        &req.email_code,
        Vec::new(),
        ip,
    )
    .await?;
    let by_phone = check_code(
        app,
        Purpose::PinRecoveryPhone,
        &phone,
        Some(&claims.body.phone_sid),
        &req.phone_code,
        Vec::new(),
        ip,
    )
    .await?;
    let hash = hash_secret(app, req.pin.secret()).await?;
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
    let mut tx = Tx::new();
    tx.add_or(by_email.consume, already_used)
        .add_or(by_phone.consume, already_used)
        .add_or(
            Write::Update {
                key: user_key(&user.id),
                ops: vec![
                    Update::set("session_epoch", user.session_epoch),
                    Update::set("has_pin", true),
                ],
                cond: Some(Cond::eq("session_epoch", old_epoch)),
            },
            || Error::invalid_flow_token("The account changed meanwhile. Start again"),
        )
        .add(Write::Update {
            key: cred_key(&user.id),
            ops: vec![Update::set("pin_hash", hash.as_str())],
            cond: None,
        })
        .add(Lockout::pin(app, &user.id).clear())
        .add_all(writes);
    app.db.commit(tx).await.map_err(Error::from)?;
    info!(user = %user.id, "PIN recovered: every other session revoked");
    let data = serde_json::json!({"reason": "pin_recovery", "all_sessions": true});
    emit(app, Event::new(EventType::SessionRevoked, Some(&user), data, now)).await?;
    notify(
        app,
        &user,
        by_email.session.destination.as_str(),
        &by_phone.session.locale,
    )
    .await?;
    Ok((user, tokens))
}

/// Tells the email and the phone that the PIN was reset (a failed notice
/// is logged; the reset stands).
async fn notify(app: &App, user: &User, email: &str, locale: &str) -> Result<()> {
    let sender = app.sender()?;
    for (pipe, to) in [(Pipe::Email, email), (Pipe::Sms, user.phone.as_str())] {
        let msg = NoticeMessage {
            pipe,
            to: to.to_owned(),
            notice: Notice::PinReset,
            locale: locale.to_owned(),
        };
        if let Err(e) = sender.send_notice(&msg).await {
            warn!(pipe = pipe.as_str(), error = %e, "PIN reset notice not delivered");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn every_bad_field_is_named_before_the_token_is_read() {
        let t = testing::app();
        let raw = Raw {
            recovery_token: Some("x"),
            email_otp: Some("12"),
            phone_otp: None,
            pin: Some("1234"),
            ip: None,
        };
        match Request::parse(&t.app, raw).err() {
            Some(Error::Validation(m)) => {
                assert_eq!(m.into_keys().collect::<Vec<_>>(), ["emailOtp", "phoneOtp", "pin"])
            }
            other => panic!("{other:?}"),
        }
    }
}
