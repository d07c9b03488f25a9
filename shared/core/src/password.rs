//! Password sign-in with the device check, device verification, and the
//! forgot-password flow.
//!
//! A password is never enough on a device the account does not know: the
//! right password there opens a `device` OTP session and answers
//! `VERIFY_DEVICE`; the code completes the sign-in and the device becomes
//! known. A device is known only when it presents the deviceToken it got
//! the last time it proved a code (the deviceId is a name the client
//! chose, which anyone can repeat), so a phished password and the victim's
//! deviceId are useless on the attacker's device. Google and Apple sign-in
//! ([`crate::oauth`]) use the same check.

use serde_json::Value;
use tracing::info;

use crate::App;
use crate::auth::{
    CheckBody, DeviceInfo, DeviceVerificationBody, NewOtp, ResetBody, TempBody, Tokens, all_fields, blocked_until,
    check_code, consumed_err, field, open_otp, parse_device_extras, required, session_writes, verify_check,
};
use crate::channel::Channel;
use crate::credentials::{Lockout, hash_secret, parse_password, presented_password, verify_secret};
use crate::error::{Error, Result};
use crate::events::{Event, EventType, emit};
use crate::ids::UserId;
use crate::mask::mask_phone;
use crate::otp::OtpCode;
use crate::repo::Platform;
use crate::repo::{Credentials, User, cred_key, device_key, from_item, jti_key, lock_key, to_item, user_key};
use crate::table::{Cond, EXPIRES_AT, Item, Update, Write};
use crate::tokens::{Claims, TokenKind};

/// The OTP purpose of device verification.
pub const PURPOSE_DEVICE: &str = "device";
/// The OTP purpose of a password reset.
pub const PURPOSE_RESET: &str = "reset";

/// The write that consumes a checkToken (or any single-use JWT) by its `jti`.
pub(crate) fn use_jti(jti: &str, exp: i64, now: i64) -> Result<Write> {
    let mut used = Item::new();
    used.insert(EXPIRES_AT.into(), Value::from(exp));
    Ok(Write::Put {
        item: to_item(&jti_key(jti), &used)?,
        cond: Some(Cond::absent_at(now)),
    })
}

/// The channel codes for device checks and resets go out on: the
/// deployment's primary pipe (SMS, or WhatsApp on a WhatsApp-first one).
fn primary_channel(app: &App) -> Channel {
    app.settings.primary_pipe().channel()
}

// ---------------------------------------------------------------- password login

pub struct PasswordLoginInput<'a> {
    pub check_token: Option<&'a str>,
    pub password: Option<&'a str>,
    pub device_id: Option<&'a str>,
    /// The device's proof that it is known (body `deviceToken`, or the web cookie).
    pub device_token: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub locale: String,
    pub ip: Option<&'a str>,
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

/// `POST /auth/login/password`. Consumes the checkToken. An unknown user
/// or an account without a password costs the time of a wrong password.
pub async fn login(app: &App, input: PasswordLoginInput<'_>) -> Result<SignIn> {
    let now = app.now();
    let (mut claims, mut password, mut extras) = (None, None, None);
    all_fields([
        field(&mut claims, verify_check(app, input.check_token, input.device_id, now)),
        field(&mut password, presented_password(input.password, "password")),
        field(&mut extras, parse_device_extras(input.device_name, input.platform)),
    ])?;
    let (Some(claims), Some(password), Some((device_name, platform))) = (claims, password, extras) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let claims: Claims<CheckBody> = claims;
    let body = &claims.body;
    let Some(uid) = body.uid.clone() else {
        verify_secret(app, &password, None).await?;
        return Err(Error::InvalidCredentials);
    };
    let keys = [
        jti_key(&claims.jti),
        user_key(&uid),
        cred_key(&uid),
        lock_key(crate::credentials::LOCK_PASSWORD, &uid),
        device_key(&uid, &body.did),
    ];
    let mut found = app.db.batch_get(&keys, now).await?.into_iter();
    if found.next().flatten().is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let user: Option<User> = found.next().flatten().map(from_item).transpose()?;
    let creds: Credentials = found.next().flatten().map(from_item).transpose()?.unwrap_or_default();
    let lock_item = found.next().flatten();
    let known_device = crate::auth::device_proven(found.next().flatten(), input.device_token)?;
    let Some(user) = user else {
        verify_secret(app, &password, None).await?;
        return Err(Error::InvalidCredentials);
    };
    if user.blocked || blocked_until(app, &user).is_some() {
        // Before the password check, so the answer says nothing about it.
        verify_secret(app, &password, None).await?;
        return Err(Error::AccountBlocked);
    }
    let Some(hash) = creds.password_hash else {
        verify_secret(app, &password, None).await?;
        return Err(Error::PasswordNotSet);
    };
    let lock = Lockout::password(app, &user.id);
    let slot = lock.take(app, lock_item).await?;
    if !verify_secret(app, &password, Some(&hash)).await? {
        info!(user = %user.id, "wrong password");
        return Err(lock.fail(app, &slot).await);
    }
    lock.still_held(app, &slot)?;
    let device = DeviceInfo {
        device_id: body.did.clone(),
        device_name,
        platform,
    };
    let consume = use_jti(&claims.jti, claims.exp, now)?;
    let clear = lock.clear();
    if known_device {
        let (writes, tokens) = session_writes(app, &user, &device, vec!["pwd".into()], now)?;
        let mut all = vec![consume, clear];
        all.extend(writes);
        app.db.transact(all).await.map_err(consumed_err)?;
        info!(user = %user.id, sid = %tokens.session.sid, "signed in with a password");
        return Ok(SignIn::SignedIn {
            user: Box::new(user),
            tokens: Box::new(tokens),
        });
    }
    let check = DeviceCheck {
        user: &user,
        device,
        first_factor: "pwd",
        locale: input.locale,
        ip: input.ip,
        check_jti: &claims.jti,
    };
    device_check(app, check, vec![consume, clear]).await
}

/// A right first factor (password, Google or Apple) on a device the account
/// does not know: what the code to the phone must complete.
pub(crate) struct DeviceCheck<'a> {
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
/// whose write 0 consumes the checkToken) and answers `VERIFY_DEVICE`.
pub(crate) async fn device_check(app: &App, c: DeviceCheck<'_>, before: Vec<Write>) -> Result<SignIn> {
    let now = app.now();
    let user = c.user;
    let opened = open_otp(
        app,
        NewOtp {
            purpose: PURPOSE_DEVICE,
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
        |e| e.failed_at(0).then_some(Error::TokenAlreadyUsed),
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
    let (device_verification_token, _) = app.keys.issue_with_jti(
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

fn parse_code(otp: Option<&str>) -> Result<OtpCode> {
    required(otp, "otp").and_then(|s| OtpCode::parse(s, 6, "otp"))
}

/// `POST /account/device/verify`: the code sent after a right password on
/// an unknown device. Consumes the deviceVerificationToken; the device
/// becomes known.
pub async fn verify_device(
    app: &App,
    token: Option<&str>,
    otp: Option<&str>,
    ip: Option<&str>,
) -> Result<(User, Tokens)> {
    let now = app.now();
    let (mut tok, mut code) = (None, None);
    all_fields([
        field(&mut tok, required(token, "deviceVerificationToken")),
        field(&mut code, parse_code(otp)),
    ])?;
    let (Some(tok), Some(code)) = (tok, code) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let claims: Claims<DeviceVerificationBody> = app.keys.verify(TokenKind::DeviceVerification, tok, now)?;
    let b = &claims.body;
    let checked = check_code(
        app,
        PURPOSE_DEVICE,
        &b.phone,
        Some(&claims.jti),
        &code,
        vec![user_key(&b.uid)],
        ip,
    )
    .await?;
    let user: User = checked
        .extra
        .into_iter()
        .next()
        .flatten()
        .map(from_item)
        .transpose()?
        .ok_or(Error::NotFound("Account not found"))?;
    if user.blocked || blocked_until(app, &user).is_some() {
        return Err(Error::AccountBlocked);
    }
    let device = DeviceInfo {
        device_id: checked.session.device_id.clone(),
        device_name: b.dname.clone(),
        platform: b.plt,
    };
    let first = b.first.clone().unwrap_or_else(|| "pwd".to_owned());
    let amr = vec![first, checked.session.channel.amr().to_owned()];
    let (writes, tokens) = session_writes(app, &user, &device, amr, now)?;
    let mut all = vec![checked.consume];
    all.extend(writes);
    app.db.transact(all).await.map_err(consumed_err)?;
    info!(user = %user.id, sid = %tokens.session.sid, "device verified");
    Ok((user, tokens))
}

// ---------------------------------------------------------------- forgot password

/// What `/auth/password/forgot/initiate` sent.
#[derive(Debug)]
pub struct ResetStarted {
    pub temp_token: String,
    pub masked_phone: String,
    pub expires_in: i64,
    pub sandbox_otp: Option<String>,
}

/// `POST /auth/password/forgot/initiate`: a code to the phone. Does not
/// consume the checkToken (a used one is still refused).
pub async fn forgot_initiate(
    app: &App,
    check_token: Option<&str>,
    device_id: Option<&str>,
    locale: String,
    ip: Option<&str>,
) -> Result<ResetStarted> {
    let now = app.now();
    let claims = verify_check(app, check_token, device_id, now)?;
    let Some(uid) = claims.body.uid.clone() else {
        return Err(Error::NotFound("Account not found"));
    };
    let mut found = app
        .db
        .batch_get(&[jti_key(&claims.jti), user_key(&uid), cred_key(&uid)], now)
        .await?
        .into_iter();
    if found.next().flatten().is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let user: User = found
        .next()
        .flatten()
        .map(from_item)
        .transpose()?
        .ok_or(Error::NotFound("Account not found"))?;
    let creds: Credentials = found.next().flatten().map(from_item).transpose()?.unwrap_or_default();
    if creds.password_hash.is_none() {
        return Err(Error::PasswordNotSet);
    }
    let opened = open_otp(
        app,
        NewOtp {
            purpose: PURPOSE_RESET,
            phone: &user.phone,
            country: &user.country,
            user_id: Some(user.id.clone()),
            device_id: &claims.body.did,
            channel: primary_channel(app),
            destination: user.phone.clone(),
            locale,
            ip,
            max_attempts: None,
        },
        Vec::new(),
        |_| None,
        Vec::new(),
    )
    .await?;
    let sent = crate::auth::sent(app, &opened, Some(user.id.clone()), now)?;
    info!(user = %user.id, "password reset code sent");
    Ok(ResetStarted {
        temp_token: sent.temp_token,
        masked_phone: mask_phone(&user.phone),
        expires_in: sent.expires_in,
        sandbox_otp: sent.sandbox_otp,
    })
}

/// `POST /auth/password/forgot/verify-otp`: the code → a resetToken (10 min).
pub async fn forgot_verify(app: &App, temp_token: Option<&str>, otp: Option<&str>, ip: Option<&str>) -> Result<String> {
    let now = app.now();
    let (mut tok, mut code) = (None, None);
    all_fields([
        field(&mut tok, required(temp_token, "tempToken")),
        field(&mut code, parse_code(otp)),
    ])?;
    let (Some(tok), Some(code)) = (tok, code) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let claims: Claims<TempBody> = app.keys.verify(TokenKind::Temp, tok, now)?;
    let Some(uid) = claims.body.uid.clone().filter(|_| claims.body.purpose == PURPOSE_RESET) else {
        return Err(Error::invalid_flow_token("This token cannot be used here"));
    };
    let checked = check_code(
        app,
        PURPOSE_RESET,
        &claims.body.phone,
        Some(&claims.jti),
        &code,
        Vec::new(),
        ip,
    )
    .await?;
    app.db.transact(vec![checked.consume]).await.map_err(consumed_err)?;
    let body = ResetBody {
        phone: claims.body.phone.clone(),
        did: checked.session.device_id.clone(),
    };
    let (reset_token, _) = app.keys.issue(TokenKind::Reset, uid.as_str(), body, now)?;
    info!(user = %uid, "password reset code verified");
    Ok(reset_token)
}

/// `POST /auth/password/forgot/reset`: the new password. Revokes every
/// session of the user (one write: the session epoch moves on) and signs
/// the reset's device in afresh.
pub struct ResetInput<'a> {
    pub reset_token: Option<&'a str>,
    pub new_password: Option<&'a str>,
    pub confirm: Option<&'a str>,
    /// The new session's device name and platform (optional, as at sign-in;
    /// `WEB` also gets the refresh cookie).
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
}

pub async fn forgot_reset(app: &App, input: ResetInput<'_>) -> Result<(User, Tokens)> {
    let now = app.now();
    let (mut tok, mut pw, mut conf, mut extras) = (None, None, None, None);
    all_fields([
        field(&mut tok, required(input.reset_token, "resetToken")),
        field(&mut pw, parse_password(input.new_password, "newPassword")),
        field(&mut conf, required(input.confirm, "confirmPassword")),
        field(&mut extras, parse_device_extras(input.device_name, input.platform)),
    ])?;
    let (Some(tok), Some(pw), Some(conf), Some((device_name, platform))) = (tok, pw, conf, extras) else {
        return Err(Error::internal("parsed fields missing"));
    };
    if !crate::crypto::ct_eq(secrecy::ExposeSecret::expose_secret(&pw).as_bytes(), conf.as_bytes()) {
        return Err(Error::PasswordMismatch);
    }
    let claims: Claims<ResetBody> = app.keys.verify(TokenKind::Reset, tok, now)?;
    let uid = UserId::parse(&claims.sub).map_err(|_| Error::invalid_flow_token("Invalid reset token"))?;
    let mut found = app
        .db
        .batch_get(&[jti_key(&claims.jti), user_key(&uid)], now)
        .await?
        .into_iter();
    if found.next().flatten().is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let mut user: User = found
        .next()
        .flatten()
        .map(from_item)
        .transpose()?
        .ok_or(Error::NotFound("Account not found"))?;
    if user.blocked {
        return Err(Error::AccountBlocked);
    }
    let hash = hash_secret(app, &pw).await?;
    let old_epoch = user.session_epoch;
    user.session_epoch = old_epoch.saturating_add(1);
    user.has_password = true;
    let device = DeviceInfo {
        device_id: claims.body.did.clone(),
        device_name,
        platform,
    };
    let (writes, tokens) = session_writes(app, &user, &device, vec!["pwd".into(), "reset".into()], now)?;
    let mut all = vec![
        use_jti(&claims.jti, claims.exp, now)?,
        Write::Update {
            key: user_key(&uid),
            ops: vec![
                Update::set("session_epoch", user.session_epoch),
                Update::set("has_password", true),
            ],
            cond: Some(Cond::eq("session_epoch", old_epoch)),
        },
        Write::Update {
            key: cred_key(&uid),
            ops: vec![Update::set("password_hash", hash.as_str())],
            cond: None,
        },
        Lockout::password(app, &uid).clear(),
    ];
    all.extend(writes);
    app.db.transact(all).await.map_err(|e| {
        if e.failed_at(1) {
            // Another reset (or a block) moved the epoch first.
            Error::invalid_flow_token("The account changed meanwhile. Start again")
        } else {
            consumed_err(e)
        }
    })?;
    info!(user = %user.id, "password reset: every session revoked");
    let data = serde_json::json!({"reason": "password_reset", "all_sessions": true});
    emit(app, Event::new(EventType::SessionRevoked, Some(&user), data, now)).await;
    Ok((user, tokens))
}
