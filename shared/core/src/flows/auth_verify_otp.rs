//! `POST /api/v1/auth/verify-otp`: checks the code and uses its session
//! up. A returning user is signed in; a new one is registered (in the same
//! transaction that uses the code) and, like one who has not finished
//! primary onboarding, gets an onboardingToken; an under-age user gets the
//! date they may sign in.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::ids::UserId;
use crate::base::otp::OtpCode;
use crate::base::tokens::{Claims, TokenKind};
use crate::base::values::DeviceExtras;
use crate::model::claims::{OnboardingBody, TempBody};
use crate::model::keys::user_key;
use crate::model::records::{OnboardingFlags, User, from_item};
use crate::model::table::Write;
use crate::ports::events::{Event, EventType};
use crate::ports::table::{Db, Tx, TxError};
use crate::services::events::emit;
use crate::services::flow_tokens::already_used;
use crate::services::otp_sessions::{Purpose, check_code};
use crate::services::sessions::{DeviceInfo, Tokens, session_writes};
use crate::services::tiers::blocked_until;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    events: true,
    ..Needs::NOTHING
};

/// The request as the client sent it.
pub struct Raw<'a> {
    pub temp_token: Option<&'a str>,
    pub otp: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
    /// The client's IP, whose failure budget a wrong code spends.
    pub ip: Option<String>,
}

/// The request, checked: a sign-in tempToken, a 6-digit code.
pub struct Request {
    pub temp: Claims<TempBody>,
    pub code: OtpCode,
    pub extras: DeviceExtras,
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(app: &App, raw: Raw<'_>) -> Result<Self> {
        let (tok, code, extras) = (
            required(raw.temp_token, "tempToken"),
            required(raw.otp, "otp").and_then(|s| OtpCode::parse(s, 6, "otp")),
            DeviceExtras::parse(raw.device_name, raw.platform),
        )
            .all()?;
        let temp: Claims<TempBody> = app.keys()?.verify(TokenKind::Temp, tok, app.now())?;
        if temp.body.purpose != Purpose::Auth.as_str() {
            return Err(Error::invalid_flow_token("This token cannot be used here"));
        }
        Ok(Self {
            temp,
            code,
            extras,
            ip: raw.ip,
        })
    }
}

/// What a right code led to.
#[derive(Debug)]
pub enum Verified {
    /// A returning user with primary onboarding done.
    SignedIn { user: Box<User>, tokens: Box<Tokens> },
    /// A new user, or one who has not finished primary onboarding.
    CollectPrimary {
        onboarding_token: String,
        flags: OnboardingFlags,
    },
    /// An under-age user.
    Blocked { unblock_date: String },
}

pub async fn run(app: &App, req: Request) -> Result<Verified> {
    let now = app.now();
    let claims = req.temp;
    // One round trip for the session's attempt and (when known) the user.
    let extra = claims.body.uid.iter().map(user_key).collect();
    let checked = check_code(
        app,
        Purpose::Auth,
        &claims.body.phone,
        Some(&claims.jti),
        &req.code,
        extra,
        req.ip.as_deref(),
    )
    .await?;
    let known: Option<User> = checked.extra.into_iter().next().flatten().map(from_item).transpose()?;
    let session = checked.session;
    let consume = checked.consume;
    let device = DeviceInfo {
        device_id: session.device_id.clone(),
        device_name: req.extras.name,
        platform: req.extras.platform,
    };
    let amr = vec![session.channel.amr().to_owned()];
    if let Some(user) = known {
        return finish(app, user, &device, amr, now, Some(consume)).await;
    }
    // A new user: created with the phone uniqueness item, in the same
    // transaction that uses the code.
    #[derive(Clone, Copy)]
    enum Refused {
        Used,
        PhoneTaken,
    }
    let user = User::new(UserId::generate()?, &session.phone, &session.country, now);
    let [create_user, claim_phone] = Db::create_user_writes(&user, now)?;
    let mut tx = Tx::tagged();
    tx.add_or(consume.clone(), Refused::Used)
        .add(create_user)
        .add_or(claim_phone, Refused::PhoneTaken);
    match app.db.commit(tx).await {
        Ok(()) => {
            info!(user = %user.id, "user registered");
            let data = serde_json::json!({"flow": "passwordless", "channel": session.channel});
            emit(app, Event::new(EventType::UserRegistered, Some(&user), data, now)).await?;
            onboarding(app, &user, &device, amr, now)
        }
        Err(TxError::Refused(Refused::Used)) => Err(Error::TokenAlreadyUsed),
        Err(TxError::Refused(Refused::PhoneTaken)) => {
            // Someone registered this phone meanwhile: sign in as them.
            use_up(app, consume).await?;
            let existing = app
                .db
                .user_by_phone(&session.phone, now)
                .await?
                .ok_or_else(|| Error::internal("phone item without its user"))?;
            finish(app, existing, &device, amr, now, None).await
        }
        Err(TxError::Store(e)) => Err(e.into()),
    }
}

/// Uses the code up on its own (the answer is not a sign-in).
async fn use_up(app: &App, consume: Write) -> Result<()> {
    let mut tx = Tx::new();
    tx.add_or(consume, already_used);
    app.db.commit(tx).await.map_err(Error::from)
}

/// Signs an existing user in (or sends them to onboarding), using the code
/// up in the same transaction when `consume` is given.
async fn finish(
    app: &App,
    user: User,
    device: &DeviceInfo,
    amr: Vec<String>,
    now: i64,
    consume: Option<Write>,
) -> Result<Verified> {
    if user.blocked {
        if let Some(c) = consume {
            use_up(app, c).await?;
        }
        return Err(Error::AccountBlocked);
    }
    if let Some(date) = blocked_until(app, &user) {
        if let Some(c) = consume {
            use_up(app, c).await?;
        }
        return Ok(Verified::Blocked { unblock_date: date });
    }
    if !user.primary_complete {
        if let Some(c) = consume {
            use_up(app, c).await?;
        }
        return onboarding(app, &user, device, amr, now);
    }
    let (writes, tokens) = session_writes(app, &user, device, amr, now)?;
    let mut tx = Tx::new();
    if let Some(c) = consume {
        tx.add_or(c, already_used);
    }
    tx.add_all(writes);
    app.db.commit(tx).await.map_err(Error::from)?;
    info!(user = %user.id, sid = %tokens.session.sid, "signed in");
    Ok(Verified::SignedIn {
        user: Box::new(user),
        tokens: Box::new(tokens),
    })
}

fn onboarding(app: &App, user: &User, device: &DeviceInfo, amr: Vec<String>, now: i64) -> Result<Verified> {
    let body = OnboardingBody {
        phone: user.phone.clone(),
        did: device.device_id.clone(),
        amr,
        dname: device.device_name.clone(),
        plt: device.platform,
    };
    let (onboarding_token, _) = app.keys()?.issue(TokenKind::Onboarding, user.id.as_str(), body, now)?;
    Ok(Verified::CollectPrimary {
        onboarding_token,
        flags: user.flags(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    const PHONE: &str = "+255745051250";

    async fn code_session(t: &testing::TestApp) -> (String, String) {
        testing::open_sign_in_code(&t.app, PHONE, "d").await
    }

    fn raw<'a>(temp: &'a str, otp: &'a str) -> Raw<'a> {
        Raw {
            temp_token: Some(temp),
            otp: Some(otp),
            device_name: None,
            platform: None,
            ip: None,
        }
    }

    #[tokio::test]
    async fn a_right_code_registers_a_new_user_once() {
        let t = testing::app();
        let (temp, code) = code_session(&t).await;
        let out = run(&t.app, Request::parse(&t.app, raw(&temp, &code)).unwrap())
            .await
            .unwrap();
        assert!(matches!(out, Verified::CollectPrimary { .. }), "{out:?}");
        assert!(t.app.db.user_by_phone(PHONE, t.app.now()).await.unwrap().is_some());
        let again = run(&t.app, Request::parse(&t.app, raw(&temp, &code)).unwrap()).await;
        assert_eq!(again.err().map(|e| e.code()), Some("TOKEN_ALREADY_USED"));
    }

    #[tokio::test]
    async fn a_wrong_code_spends_an_attempt_and_says_how_many_are_left() {
        let t = testing::app();
        let (temp, code) = code_session(&t).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let e = run(&t.app, Request::parse(&t.app, raw(&temp, wrong)).unwrap())
            .await
            .unwrap_err();
        let left = t.app.settings.otp_max_attempts - 1;
        assert!(
            matches!(e, Error::InvalidOtp { remaining } if remaining == left),
            "{e:?}"
        );
    }

    #[test]
    fn fields_are_checked_before_the_token() {
        let t = testing::app();
        let e = Request::parse(&t.app, raw("not-a-token", "12")).err().map(|e| e.code());
        assert_eq!(e, Some("VALIDATION_ERROR"));
        let e = Request::parse(&t.app, raw("not-a-token", "123456"))
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("INVALID_TOKEN"));
    }
}
