//! One-time code sessions of end users (docs/DESIGN.md §4): one session per
//! purpose and phone (a new one replaces the old, so only the latest code
//! is valid), its code stored only as an HMAC under the pepper, its wrong
//! attempts taken before a code is compared.

use tracing::{info, warn};

use crate::App;
use crate::base::channel::{Channel, Pipe};
use crate::base::error::{Error, Result};
use crate::base::ids::{UserId, random_base62};
use crate::base::mask::{mask_email, mask_phone};
use crate::base::otp::OtpCode;
use crate::base::phone::PhoneNumber;
use crate::base::tokens::TokenKind;
use crate::model::claims::TempBody;
use crate::model::keys::otp_key;
use crate::model::records::{OtpSession, from_item, to_item};
use crate::model::table::{Cond, EXPIRES_AT, Item, Key, TableError, Update, Write};
use crate::ports::sender::OtpMessage;
use crate::ports::table::Tx;
use crate::services::limits::{Guarded, SendFrom, commit_guarded, record_failure, send_guard};

/// What a code session is for: each has its own session per phone, and
/// a tempToken of one purpose is refused by the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Passwordless sign-in and sign-up.
    Auth,
    /// Adding an email to the account (the code goes to the email).
    Email,
    /// A right password or idToken on a device the account does not know.
    Device,
    /// A forgotten password.
    Reset,
    /// The one-step flow (no checkToken).
    OneStep,
    /// A forgotten PIN: the code to the email, and the one to the phone.
    PinRecoveryEmail,
    PinRecoveryPhone,
}

impl Purpose {
    /// The name stored in the session and its tempToken (and in its key).
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Auth => "auth",
            Purpose::Email => "email",
            Purpose::Device => "device",
            Purpose::Reset => "reset",
            Purpose::OneStep => "onestep",
            Purpose::PinRecoveryEmail => "pinrec_email",
            Purpose::PinRecoveryPhone => "pinrec_phone",
        }
    }

    /// What a message names (for logs and templates).
    fn message_purpose(self) -> &'static str {
        match self {
            Purpose::Reset => "reset",
            Purpose::Device => "device",
            Purpose::Email => "email",
            Purpose::OneStep => "onestep",
            Purpose::PinRecoveryEmail | Purpose::PinRecoveryPhone => "pin_recovery",
            Purpose::Auth => "auth",
        }
    }

    /// The purpose named `s` (as stored).
    pub fn of(s: &str) -> Option<Self> {
        [
            Purpose::Auth,
            Purpose::Email,
            Purpose::Device,
            Purpose::Reset,
            Purpose::OneStep,
            Purpose::PinRecoveryEmail,
            Purpose::PinRecoveryPhone,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A code sent: the tempToken that carries its session and what the
/// client shows (passwordless-start, resend, email start).
#[derive(Debug)]
pub struct CodeSent {
    pub temp_token: String,
    pub masked_destination: String,
    pub channel: Channel,
    /// The pipes the code was delivered over.
    pub delivered: Vec<Pipe>,
    pub expires_in: i64,
    pub resend_after: i64,
    pub resends_left: u32,
    /// The code, only in sandbox mode.
    pub sandbox_otp: Option<String>,
}

/// A fresh code for `phone`: a test number's fixed code or a random one.
pub fn new_code(app: &App, phone: &str) -> Result<OtpCode> {
    match app.settings.test_numbers.get(phone) {
        Some(code) => Ok(OtpCode::fixed(code)),
        None => OtpCode::generate(6),
    }
}

/// Sends `code` over every pipe of `channel` at once; the pipes that delivered.
pub async fn deliver(app: &App, session: &OtpSession, channel: Channel, code: &OtpCode) -> Result<Vec<Pipe>> {
    if app.settings.is_test_number(&session.phone) {
        return Ok(channel.pipes().to_vec());
    }
    let sender = app.sender()?;
    let purpose = Purpose::of(&session.purpose).unwrap_or(Purpose::Auth).message_purpose();
    let message = |pipe: Pipe| OtpMessage {
        pipe,
        to: session.destination.clone(),
        code: code.clone(),
        locale: session.locale.clone(),
        purpose,
        ttl: None,
    };
    let results: Vec<(Pipe, bool)> = match channel.pipes() {
        [a, b] => {
            let (ma, mb) = (message(*a), message(*b));
            let (ra, rb) = tokio::join!(sender.send(&ma), sender.send(&mb));
            vec![(*a, ra.is_ok()), (*b, rb.is_ok())]
                .into_iter()
                .zip([ra.err(), rb.err()])
                .map(|((p, ok), err)| {
                    if let Some(e) = err {
                        warn!(pipe = p.as_str(), error = %e, "delivery failed");
                    }
                    (p, ok)
                })
                .collect()
        }
        pipes => {
            let mut v = Vec::new();
            for p in pipes {
                let r = sender.send(&message(*p)).await;
                if let Err(e) = &r {
                    warn!(pipe = p.as_str(), error = %e, "delivery failed");
                }
                v.push((*p, r.is_ok()));
            }
            v
        }
    };
    Ok(results.into_iter().filter(|(_, ok)| *ok).map(|(p, _)| p).collect())
}

/// The masked number or address a session's code went to.
pub fn masked_destination(s: &OtpSession) -> String {
    match s.channel {
        Channel::Email => mask_email(&s.destination),
        _ => mask_phone(&s.destination),
    }
}

/// The tempToken of a session (its `jti` is the session id).
pub fn temp_token(app: &App, session: &OtpSession, uid: Option<UserId>, now: i64) -> Result<String> {
    let body = TempBody {
        phone: session.phone.clone(),
        purpose: session.purpose.clone(),
        uid,
    };
    let (token, _) = app
        .keys()?
        .issue_with_jti(TokenKind::Temp, &session.phone, &session.session_id, body, now)?;
    Ok(token)
}

/// The [`CodeSent`] of a freshly opened session.
pub fn sent(app: &App, opened: &Opened, uid: Option<UserId>, now: i64) -> Result<CodeSent> {
    let session = &opened.session;
    Ok(CodeSent {
        temp_token: temp_token(app, session, uid, now)?,
        masked_destination: masked_destination(session),
        channel: session.channel,
        delivered: opened.delivered.clone(),
        expires_in: app.settings.otp_ttl,
        resend_after: app.settings.resend_cooldown,
        resends_left: app.settings.max_resends,
        sandbox_otp: app.settings.sandbox.then(|| opened.code.expose().to_owned()),
    })
}

/// An OTP session to open.
pub struct NewOtp<'a> {
    pub purpose: Purpose,
    pub phone: &'a str,
    pub country: &'a str,
    pub user_id: Option<UserId>,
    pub device_id: &'a str,
    pub channel: Channel,
    /// E.164 number or email address.
    pub destination: String,
    pub locale: String,
    pub ip: Option<&'a str>,
    /// Wrong codes that end the session (`None`: `OTP_MAX_ATTEMPTS`).
    pub max_attempts: Option<u32>,
}

/// An opened session, its code and the pipes that delivered it.
pub struct Opened {
    pub session: OtpSession,
    pub code: OtpCode,
    pub delivered: Vec<Pipe>,
}

/// Opens the OTP session of `new`, replacing any earlier one of its
/// purpose for the phone (only the latest is valid), and sends the code.
///
/// One transaction holds `before` (the caller's writes with their
/// refusals, e.g. using up a checkToken), the session and the send
/// counters. When the phone's failure budget has less room than the
/// session's attempts, the session is opened with one attempt instead. When
/// no pipe delivers, the session is removed with `undo` and the answer is
/// `DELIVERY_FAILED`.
pub async fn open_otp(app: &App, new: NewOtp<'_>, before: Tx, undo: Vec<Write>) -> Result<Opened> {
    let now = app.now();
    let code = new_code(app, new.phone)?;
    let session_id = random_base62()?;
    let attempts = new.max_attempts.unwrap_or(app.settings.otp_max_attempts);
    let mut session = OtpSession {
        session_id: session_id.clone(),
        purpose: new.purpose.as_str().into(),
        phone: new.phone.to_owned(),
        country: new.country.to_owned(),
        user_id: new.user_id,
        device_id: new.device_id.to_owned(),
        channel: new.channel,
        destination: new.destination,
        code_hash: app.pepper()?.hash(&session_id, &code),
        attempts_left: attempts,
        resends: 0,
        sent_at: now,
        code_expires_at: now + app.settings.otp_ttl,
        expires_at: now + TokenKind::Temp.ttl(),
        consumed: false,
        locale: new.locale,
    };
    let otp = otp_key(new.purpose.as_str(), new.phone);
    let from = SendFrom {
        phone: new.phone,
        device: new.device_id,
        ip: new.ip,
        attempts,
    };
    let mut guard = send_guard(app, from, now).await?;
    loop {
        let mut tx = before.clone().map(Guarded::Refusal);
        tx.add(Write::Put {
            item: to_item(&otp, &session)?,
            cond: None,
        });
        tx.append(guard.tx());
        if commit_guarded(app, tx, &guard, new.country, now).await? {
            break;
        }
        info!(
            purpose = new.purpose.as_str(),
            "the phone's failure budget is nearly spent: one attempt"
        );
        session.attempts_left = 1;
        guard = guard.without_room();
    }

    let delivered = deliver(app, &session, session.channel, &code).await?;
    if delivered.is_empty() {
        // Leave nothing usable behind.
        let mut writes = undo;
        writes.push(Write::Delete {
            key: otp,
            cond: Some(Cond::eq("session_id", session_id.as_str())),
        });
        if let Err(e) = app.db.transact(writes).await {
            warn!(error = %e, "could not roll back a failed send");
        }
        return Err(Error::DeliveryFailed);
    }
    info!(
        phone = %PhoneNumber::from_trusted(&session.phone, &session.country),
        purpose = new.purpose.as_str(),
        channel = session.channel.as_str(),
        "code sent"
    );
    Ok(Opened {
        session,
        code,
        delivered,
    })
}

/// Why a session cannot take an attempt: it is gone, is not the session
/// `expected` (a tempToken's `jti`), was used, has no attempts left, or its
/// code expired.
pub fn unusable(session: Option<OtpSession>, expected: Option<&str>, now: i64) -> Error {
    let Some(s) = session else {
        return Error::invalid_flow_token("This code session has ended. Start again");
    };
    if expected.is_some_and(|jti| s.session_id != jti) {
        return Error::invalid_flow_token("A newer code was requested. Use the latest one");
    }
    if s.consumed {
        return Error::TokenAlreadyUsed;
    }
    if s.attempts_left == 0 {
        return Error::TooManyOtpAttempts;
    }
    if now >= s.code_expires_at {
        return Error::OtpExpired;
    }
    // Usable now: it changed between the attempt and this read.
    Error::Conflict("The code session changed meanwhile; retry")
}

/// The condition that the session is still `session_id`, unused, with an
/// attempt left.
pub fn session_usable(session_id: &str) -> Cond {
    Cond::eq("session_id", session_id)
        .and(Cond::eq("consumed", false))
        .and(Cond::gt("attempts_left", 0))
}

/// A code that matched its session.
pub struct Checked {
    pub session: OtpSession,
    /// The write that consumes the session, for the caller's transaction
    /// (with the refusal [`crate::services::flow_tokens::already_used`]).
    pub consume: Write,
    /// The items of the extra keys, in order.
    pub extra: Vec<Option<Item>>,
}

/// Checks `code` against the OTP session of `purpose` for `phone` (the
/// session `expected`, a tempToken's `jti`; `None`: the latest one).
///
/// The attempt is taken first: one conditional write decrements the
/// session's attempts while it is live, unused, unexpired and above zero
/// and returns the session — only then is the code compared, so no number
/// of concurrent checks compares more codes than the session allows (the
/// `extra` keys are read at the same time). A wrong code is also counted on
/// the phone's, the device's and the client IP's failure budgets.
pub async fn check_code(
    app: &App,
    purpose: Purpose,
    phone: &str,
    expected: Option<&str>,
    code: &OtpCode,
    extra: Vec<Key>,
    ip: Option<&str>,
) -> Result<Checked> {
    let now = app.now();
    let pepper = app.pepper()?;
    let key = otp_key(purpose.as_str(), phone);
    let mut usable = Cond::eq("consumed", false)
        .and(Cond::gt("attempts_left", 0))
        .and(Cond::gt("code_expires_at", now))
        .and(Cond::gt(EXPIRES_AT, now));
    if let Some(jti) = expected {
        usable = usable.and(Cond::eq("session_id", jti));
    }
    let take = app
        .db
        .update(&key, vec![Update::add("attempts_left", -1)], Some(usable));
    let (taken, extra) = if extra.is_empty() {
        (take.await, Vec::new())
    } else {
        let (taken, read) = tokio::join!(take, app.db.batch_get(&extra, now));
        (taken, read?)
    };
    let item = match taken {
        Ok(item) => item,
        Err(TableError::ConditionFailed) => {
            let session: Option<OtpSession> = app.db.get(&key, now).await?;
            return Err(unusable(session, expected, now));
        }
        Err(e) => return Err(e.into()),
    };
    let session: OtpSession = from_item(item)?;
    if !pepper.verify(&session.session_id, code, &session.code_hash) {
        record_failure(app, &session.phone, &session.device_id, ip, now).await?;
        return Err(match session.attempts_left {
            0 => Error::TooManyOtpAttempts,
            remaining => Error::InvalidOtp { remaining },
        });
    }
    let consume = Write::Update {
        key,
        ops: vec![Update::set("consumed", true)],
        cond: Some(Cond::eq("session_id", session.session_id.as_str()).and(Cond::eq("consumed", false))),
    };
    Ok(Checked {
        session,
        consume,
        extra,
    })
}
