//! The one-step flow: phone → code → tokens, creating the user on first use
//! (`is_new_user`), in snake_case. No checkToken:
//! the latest code for the phone is the only valid one, and 5 wrong codes
//! end it. Send limits, the failure budget and test numbers apply as in
//! the main flow.

use serde::Serialize;
use tracing::info;

use crate::App;
use crate::account::fmt_time;
use crate::auth::{
    DeviceInfo, NewOtp, Tokens, all_fields, blocked_until, check_code, check_country, field, open_otp,
    parse_device_extras, parse_phone, required, session_writes,
};
use crate::error::{Error, Result};
use crate::events::{Event, EventType, emit};
use crate::ids::{DeviceId, UserId};
use crate::mask::mask_phone;
use crate::otp::OtpCode;
use crate::repo::{Db, User, phone_key, user_key};
use crate::tokens::REFRESH_TTL;

/// The OTP purpose of the one-step flow.
pub const PURPOSE_ONE_STEP: &str = "onestep";
/// Wrong codes that end a one-step session (the reference's 5).
pub const MAX_ATTEMPTS: u32 = 5;

/// `POST /auth/otp/trigger`.
#[derive(Debug, Serialize)]
pub struct Triggered {
    pub masked_phone: String,
    pub expires_in_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_otp: Option<String>,
}

fn optional_device(v: Option<&str>) -> Result<Option<DeviceId>> {
    match v {
        None => Ok(None),
        Some(s) => DeviceId::parse(s)
            .map(Some)
            .map_err(|_| Error::field("device_id", "must be 1–128 printable characters")),
    }
}

/// Sends a code to `phone`; any earlier code for it dies.
pub async fn trigger(
    app: &App,
    phone: Option<&str>,
    device_id: Option<&str>,
    locale: String,
    ip: Option<&str>,
) -> Result<Triggered> {
    let (mut ph, mut dev) = (None, None);
    all_fields([
        field(
            &mut ph,
            required(phone, "phone").and_then(|s| parse_phone(app, s, "phone")),
        ),
        field(&mut dev, optional_device(device_id)),
    ])?;
    let (Some(phone), Some(device)) = (ph, dev) else {
        return Err(Error::internal("parsed fields missing"));
    };
    check_country(app, &phone, "phone")?;
    let device = device.map(|d| d.as_str().to_owned()).unwrap_or_default();
    let opened = open_otp(
        app,
        NewOtp {
            purpose: PURPOSE_ONE_STEP,
            phone: phone.e164(),
            country: phone.country(),
            user_id: None,
            device_id: &device,
            channel: app.settings.primary_pipe().channel(),
            destination: phone.e164().to_owned(),
            locale,
            ip,
            max_attempts: Some(MAX_ATTEMPTS),
        },
        Vec::new(),
        |_| None,
        Vec::new(),
    )
    .await?;
    Ok(Triggered {
        masked_phone: mask_phone(phone.e164()),
        expires_in_seconds: app.settings.otp_ttl,
        sandbox_otp: app.settings.sandbox.then(|| opened.code.expose().to_owned()),
    })
}

/// `POST /auth/otp/verify`, snake_case like the rest of the one-step
/// flow. A web session gets its refresh token and deviceToken as cookies
/// only: `refresh_token` and `device_token` are then null.
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

pub struct OneStepVerifyInput<'a> {
    pub phone: Option<&'a str>,
    pub otp: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
    /// The client's IP, whose failure budget a wrong code spends.
    pub ip: Option<&'a str>,
}

/// Checks the latest code for the phone, creates the user if there is
/// none, and signs in.
pub async fn verify(app: &App, input: OneStepVerifyInput<'_>) -> Result<OneStepTokens> {
    let now = app.now();
    let (mut ph, mut code, mut dev, mut extras) = (None, None, None, None);
    all_fields([
        field(
            &mut ph,
            required(input.phone, "phone").and_then(|s| parse_phone(app, s, "phone")),
        ),
        field(
            &mut code,
            required(input.otp, "otp").and_then(|s| OtpCode::parse(s, 6, "otp")),
        ),
        field(&mut dev, optional_device(input.device_id)),
        field(&mut extras, parse_device_extras(input.device_name, input.platform)),
    ])?;
    let (Some(phone), Some(code), Some(dev), Some((device_name, platform))) = (ph, code, dev, extras) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let checked = check_code(
        app,
        PURPOSE_ONE_STEP,
        phone.e164(),
        None,
        &code,
        vec![phone_key(phone.e164())],
        input.ip,
    )
    .await
    .map_err(|e| match e {
        // No session for the phone (never sent, or ended): ask for a new code.
        Error::InvalidToken { .. } => Error::OtpExpired,
        // Its code was already used: the reference's INVALID_OTP.
        Error::TokenAlreadyUsed => Error::InvalidOtp { remaining: 0 },
        other => other,
    })?;
    let device = DeviceInfo {
        device_id: dev
            .map(|d| d.as_str().to_owned())
            .unwrap_or_else(|| checked.session.device_id.clone()),
        device_name,
        platform,
    };
    let amr = vec![checked.session.channel.amr().to_owned()];
    let existing = match checked.extra.into_iter().next().flatten() {
        Some(item) => {
            let id = item
                .get("user_id")
                .and_then(serde_json::Value::as_str)
                .and_then(|s| UserId::parse(s).ok())
                .ok_or_else(|| Error::internal("phone item without a user id"))?;
            app.db.get::<User>(&user_key(&id), now).await?
        }
        None => None,
    };
    let consume = checked.consume;
    let consumed = |e| match crate::auth::consumed_err(e) {
        Error::TokenAlreadyUsed => Error::InvalidOtp { remaining: 0 },
        other => other,
    };
    let (user, tokens, is_new) = match existing {
        Some(user) => {
            if user.blocked || blocked_until(app, &user).is_some() {
                app.db.transact(vec![consume]).await.map_err(consumed)?;
                return Err(Error::AccountBlocked);
            }
            let (writes, tokens) = session_writes(app, &user, &device, amr, now)?;
            let mut all = vec![consume];
            all.extend(writes);
            app.db.transact(all).await.map_err(consumed)?;
            (user, tokens, false)
        }
        None => {
            let user = User::new(UserId::generate()?, phone.e164(), phone.country(), now);
            let (writes, tokens) = session_writes(app, &user, &device, amr.clone(), now)?;
            let mut all = vec![consume.clone()];
            all.extend(Db::create_user_writes(&user, now)?);
            all.extend(writes);
            match app.db.transact(all).await {
                Ok(()) => {
                    info!(user = %user.id, "user registered (one-step)");
                    emit(
                        app,
                        Event::new(
                            EventType::UserRegistered,
                            Some(&user),
                            serde_json::json!({"flow": "one_step"}),
                            now,
                        ),
                    )
                    .await;
                    (user, tokens, true)
                }
                Err(e) if e.failed_at(2) => {
                    // Registered meanwhile by another request: sign in as that user.
                    let user = app
                        .db
                        .user_by_phone(phone.e164(), now)
                        .await?
                        .ok_or_else(|| Error::internal("phone item without its user"))?;
                    let (writes, tokens) = session_writes(app, &user, &device, amr, now)?;
                    let mut all = vec![consume];
                    all.extend(writes);
                    app.db.transact(all).await.map_err(consumed)?;
                    (user, tokens, false)
                }
                Err(e) => return Err(consumed(e)),
            }
        }
    };
    info!(user = %user.id, sid = %tokens.session.sid, new = is_new, "signed in (one-step)");
    let web = tokens.session.platform == Some(crate::repo::Platform::Web);
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
