//! `POST /api/v1/auth/otp/verify`: the one-step flow's check (snake_case):
//! the latest code for the phone; the user is created on first use
//! (`is_new_user`) and signed in. A web session gets its refresh token and
//! deviceToken as cookies only (`refresh_token` and `device_token` null).

use serde::Serialize;
use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::ids::{DeviceId, UserId};
use crate::base::otp::OtpCode;
use crate::base::phone::PhoneNumber;
use crate::base::time::fmt_time;
use crate::base::tokens::REFRESH_TTL;
use crate::base::values::{DeviceExtras, Platform, optional_device_id};
use crate::model::keys::{phone_key, user_key};
use crate::model::records::{User, owner};
use crate::model::table::Write;
use crate::ports::events::{Event, EventType};
use crate::ports::table::{Db, Tx, TxError};
use crate::services::events::emit;
use crate::services::numbers::parse_phone;
use crate::services::otp_sessions::{Purpose, check_code};
use crate::services::sessions::{DeviceInfo, Tokens, session_writes};
use crate::services::tiers::barred;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    events: true,
    ..Needs::NOTHING
};

/// The request as the client sent it.
pub struct Raw<'a> {
    pub phone: Option<&'a str>,
    pub otp: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
    /// The client's IP, whose failure budget a wrong code spends.
    pub ip: Option<String>,
}

/// The request, checked.
pub struct Request {
    pub phone: PhoneNumber,
    pub code: OtpCode,
    pub device: Option<DeviceId>,
    pub extras: DeviceExtras,
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(app: &App, raw: Raw<'_>) -> Result<Self> {
        let (phone, code, device, extras) = (
            required(raw.phone, "phone").and_then(|s| parse_phone(app, s, "phone")),
            required(raw.otp, "otp").and_then(|s| OtpCode::parse(s, 6, "otp")),
            optional_device_id(raw.device_id),
            DeviceExtras::parse(raw.device_name, raw.platform),
        )
            .all()?;
        Ok(Self {
            phone,
            code,
            device,
            extras,
            ip: raw.ip,
        })
    }
}

/// The tokens of a one-step sign-in.
#[derive(Debug, Serialize)]
pub struct OneStepTokens {
    pub user_id: UserId,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub device_token: Option<String>,
    pub is_new_user: bool,
    pub access_token_expires_at: String,
    pub refresh_token_expires_at: String,
    #[serde(skip)]
    pub tokens: Option<Tokens>,
}

/// The one-step flow's answer to a used code: the reference's
/// `INVALID_OTP` with no attempts left.
fn used() -> Error {
    Error::InvalidOtp { remaining: 0 }
}

pub async fn run(app: &App, req: Request) -> Result<OneStepTokens> {
    let now = app.now();
    let phone = req.phone;
    let checked = check_code(
        app,
        Purpose::OneStep,
        phone.e164(),
        None,
        &req.code,
        vec![phone_key(phone.e164())],
        req.ip.as_deref(),
    )
    .await
    .map_err(|e| match e {
        // No session for the phone (never sent, or ended): ask for a new code.
        Error::InvalidToken { .. } => Error::OtpExpired,
        Error::TokenAlreadyUsed => used(),
        other => other,
    })?;
    let device = DeviceInfo {
        device_id: req
            .device
            .map(|d| d.as_str().to_owned())
            .unwrap_or_else(|| checked.session.device_id.clone()),
        device_name: req.extras.name,
        platform: req.extras.platform,
    };
    let amr = vec![checked.session.channel.amr().to_owned()];
    let existing = match checked.extra.into_iter().next().flatten() {
        Some(item) => {
            let id = owner(&item).ok_or_else(|| Error::internal("phone item without a user id"))?;
            app.db.get::<User>(&user_key(&id), now).await?
        }
        None => None,
    };
    let consume = checked.consume;
    let (user, tokens, is_new) = match existing {
        Some(user) => {
            let tokens = sign_in(app, &user, &device, amr, consume, now).await?;
            (user, tokens, false)
        }
        None => {
            #[derive(Clone, Copy)]
            enum Refused {
                PhoneTaken,
                Used,
            }
            let user = User::new(UserId::generate()?, phone.e164(), phone.country(), now);
            let (writes, tokens) = session_writes(app, &user, &device, amr.clone(), now)?;
            let [create_user, claim_phone] = Db::create_user_writes(&user, now)?;
            let mut tx = Tx::tagged();
            // Registered meanwhile by another request is the answer even
            // when the code was used meanwhile too.
            tx.add_or(claim_phone, Refused::PhoneTaken)
                .add_or(consume.clone(), Refused::Used)
                .add(create_user)
                .add_all(writes);
            match app.db.commit(tx).await {
                Ok(()) => {
                    info!(user = %user.id, "user registered (one-step)");
                    let data = serde_json::json!({"flow": "one_step"});
                    emit(app, Event::new(EventType::UserRegistered, Some(&user), data, now)).await?;
                    (user, tokens, true)
                }
                Err(TxError::Refused(Refused::PhoneTaken)) => {
                    // Registered meanwhile by another request: sign in as that user.
                    let user = app
                        .db
                        .user_by_phone(phone.e164(), now)
                        .await?
                        .ok_or_else(|| Error::internal("phone item without its user"))?;
                    let tokens = sign_in(app, &user, &device, amr, consume, now).await?;
                    (user, tokens, false)
                }
                Err(TxError::Refused(Refused::Used)) => return Err(used()),
                Err(TxError::Store(e)) => return Err(e.into()),
            }
        }
    };
    info!(user = %user.id, sid = %tokens.session.sid, new = is_new, "signed in (one-step)");
    let web = tokens.session.platform == Some(Platform::Web);
    Ok(OneStepTokens {
        user_id: user.id.clone(),
        access_token: tokens.access_token.clone(),
        refresh_token: (!web).then(|| tokens.refresh_token.expose().to_owned()),
        device_token: tokens
            .device_token
            .as_ref()
            .filter(|_| !web)
            .map(|t| t.expose().to_owned()),
        is_new_user: is_new,
        access_token_expires_at: fmt_time(now + tokens.expires_in),
        refresh_token_expires_at: fmt_time(now + REFRESH_TTL),
        tokens: Some(tokens),
    })
}

/// Signs an existing user in, using the code up in the same transaction
/// (a blocked user's code is used up all the same).
async fn sign_in(
    app: &App,
    user: &User,
    device: &DeviceInfo,
    amr: Vec<String>,
    consume: Write,
    now: i64,
) -> Result<Tokens> {
    let mut tx = Tx::new();
    tx.add_or(consume, used);
    if barred(app, user) {
        app.db.commit(tx).await.map_err(Error::from)?;
        return Err(Error::AccountBlocked);
    }
    let (writes, tokens) = session_writes(app, user, device, amr, now)?;
    tx.add_all(writes);
    app.db.commit(tx).await.map_err(Error::from)?;
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    const PHONE: &str = "+255745051250";

    async fn trigger(t: &testing::TestApp) -> String {
        use crate::services::otp_sessions::{NewOtp, open_otp};
        let opened = open_otp(
            &t.app,
            NewOtp {
                purpose: Purpose::OneStep,
                phone: PHONE,
                country: "TZ",
                user_id: None,
                device_id: "",
                channel: crate::base::channel::Channel::Sms,
                destination: PHONE.into(),
                locale: "en".into(),
                ip: None,
                max_attempts: Some(5),
            },
            Tx::new(),
            Vec::new(),
        )
        .await
        .unwrap();
        opened.code.expose().to_owned()
    }

    fn raw<'a>(otp: &'a str) -> Raw<'a> {
        Raw {
            phone: Some(PHONE),
            otp: Some(otp),
            device_id: Some("d"),
            device_name: None,
            platform: None,
            ip: None,
        }
    }

    #[tokio::test]
    async fn the_first_sign_in_creates_the_user_and_a_used_code_is_invalid() {
        let t = testing::app();
        let code = trigger(&t).await;
        let out = run(&t.app, Request::parse(&t.app, raw(&code)).unwrap()).await.unwrap();
        assert!(out.is_new_user && out.refresh_token.is_some());
        let again = run(&t.app, Request::parse(&t.app, raw(&code)).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(again, Error::InvalidOtp { remaining: 0 }), "{again:?}");
    }

    #[tokio::test]
    async fn without_a_code_sent_the_answer_is_expired() {
        let t = testing::app();
        let e = run(&t.app, Request::parse(&t.app, raw("123456")).unwrap())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "OTP_EXPIRED");
    }
}
