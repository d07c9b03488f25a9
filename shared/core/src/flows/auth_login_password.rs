//! `POST /api/v1/auth/login/password`: the password, compared in an
//! attempt slot. On a known device (its deviceToken) the user is signed in;
//! on another, a code goes to the phone (`VERIFY_DEVICE`). Uses the
//! checkToken up. An unknown user or an account without a password costs
//! the time of a wrong password.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::AllFields;
use crate::base::tokens::Claims;
use crate::base::values::{DeviceExtras, Password};
use crate::model::claims::CheckBody;
use crate::model::keys::{cred_key, device_key, jti_key, lock_key, user_key};
use crate::model::records::{Credentials, User, from_item};
use crate::ports::table::Tx;
use crate::services::credentials::{LOCK_PASSWORD, Lockout};
use crate::services::device_check::{DeviceCheck, SignIn, device_check};
use crate::services::flow_tokens::{already_used, check_token, use_jti};
use crate::services::secret_hash::verify_secret;
use crate::services::sessions::{DeviceInfo, device_proven, session_writes};
use crate::services::tiers::barred;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

/// The request as the client sent it.
pub struct Raw<'a> {
    pub check_token: Option<&'a str>,
    pub password: Option<&'a str>,
    pub device_id: Option<&'a str>,
    /// The device's proof that it is known (body `deviceToken`, or the web cookie).
    pub device_token: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub locale: String,
    pub ip: Option<String>,
}

/// The request, checked.
pub struct Request {
    pub check: Claims<CheckBody>,
    pub password: Password,
    pub extras: DeviceExtras,
    pub device_token: Option<String>,
    pub locale: String,
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(app: &App, raw: Raw<'_>) -> Result<Self> {
        let (check, password, extras) = (
            check_token(app, raw.check_token, raw.device_id, app.now()),
            Password::presented(raw.password, "password"),
            DeviceExtras::parse(raw.device_name, raw.platform),
        )
            .all()?;
        Ok(Self {
            check,
            password,
            extras,
            device_token: raw.device_token.map(str::to_owned),
            locale: raw.locale,
            ip: raw.ip,
        })
    }
}

pub async fn run(app: &App, req: Request) -> Result<SignIn> {
    let now = app.now();
    let claims = req.check;
    let password = req.password.secret();
    let body = &claims.body;
    let Some(uid) = body.uid.clone() else {
        verify_secret(app, password, None).await?;
        return Err(Error::InvalidCredentials);
    };
    let keys = [
        jti_key(&claims.jti),
        user_key(&uid),
        cred_key(&uid),
        lock_key(LOCK_PASSWORD, &uid),
        device_key(&uid, &body.did),
    ];
    let mut found = app.db.batch_get(&keys, now).await?.into_iter();
    if found.next().flatten().is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let user: Option<User> = found.next().flatten().map(from_item).transpose()?;
    let creds: Credentials = found.next().flatten().map(from_item).transpose()?.unwrap_or_default();
    let lock_item = found.next().flatten();
    let known_device = device_proven(found.next().flatten(), req.device_token.as_deref())?;
    let Some(user) = user else {
        verify_secret(app, password, None).await?;
        return Err(Error::InvalidCredentials);
    };
    if barred(app, &user) {
        // Before the password check, so the answer says nothing about it.
        verify_secret(app, password, None).await?;
        return Err(Error::AccountBlocked);
    }
    let Some(hash) = creds.password_hash else {
        verify_secret(app, password, None).await?;
        return Err(Error::PasswordNotSet);
    };
    let lock = Lockout::password(app, &user.id);
    let slot = lock.take(app, lock_item).await?;
    if !verify_secret(app, password, Some(&hash)).await? {
        info!(user = %user.id, "wrong password");
        return Err(lock.fail(app, &slot).await);
    }
    lock.still_held(app, &slot)?;
    let device = DeviceInfo {
        device_id: body.did.clone(),
        device_name: req.extras.name,
        platform: req.extras.platform,
    };
    let mut before = Tx::new();
    before
        .add_or(use_jti(&claims.jti, claims.exp, now)?, already_used)
        .add(lock.clear());
    if known_device {
        let (writes, tokens) = session_writes(app, &user, &device, vec!["pwd".into()], now)?;
        before.add_all(writes);
        app.db.commit(before).await.map_err(Error::from)?;
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
        locale: req.locale,
        ip: req.ip.as_deref(),
        check_jti: &claims.jti,
    };
    device_check(app, check, before).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    const PHONE: &str = "+255745051250";

    fn raw<'a>(check: &'a str, password: &'a str, device_token: Option<&'a str>) -> Raw<'a> {
        Raw {
            check_token: Some(check),
            password: Some(password),
            device_id: Some("d"),
            device_token,
            device_name: None,
            platform: None,
            locale: "en".into(),
            ip: None,
        }
    }

    #[tokio::test]
    async fn a_right_password_signs_a_known_device_in_and_asks_another_for_a_code() {
        let t = testing::app();
        let tokens = testing::signed_up(&t.app, PHONE, "d").await;
        testing::set_password(&t.app, &tokens, "correct horse battery").await;
        let uid = Some(tokens.session.user_id.clone());
        let dt = tokens.device_token.as_ref().map(|d| d.expose().to_owned()).unwrap();
        let check = testing::check_token(&t.app, PHONE, "d", uid.clone());
        let known = run(
            &t.app,
            Request::parse(&t.app, raw(&check, "correct horse battery", Some(&dt))).unwrap(),
        )
        .await;
        assert!(matches!(known, Ok(SignIn::SignedIn { .. })), "{known:?}");
        let check = testing::check_token(&t.app, PHONE, "d", uid);
        let unknown = run(
            &t.app,
            Request::parse(&t.app, raw(&check, "correct horse battery", None)).unwrap(),
        )
        .await;
        assert!(matches!(unknown, Ok(SignIn::VerifyDevice { .. })), "{unknown:?}");
    }

    #[tokio::test]
    async fn a_wrong_password_is_invalid_credentials_and_uses_a_slot() {
        let t = testing::app();
        let tokens = testing::signed_up(&t.app, PHONE, "d").await;
        testing::set_password(&t.app, &tokens, "correct horse battery").await;
        let check = testing::check_token(&t.app, PHONE, "d", Some(tokens.session.user_id.clone()));
        let e = run(
            &t.app,
            Request::parse(&t.app, raw(&check, "wrong horse", None)).unwrap(),
        )
        .await;
        assert_eq!(e.err().map(|e| e.code()), Some("INVALID_CREDENTIALS"));
        let lock = t
            .app
            .db
            .get_item(&lock_key(LOCK_PASSWORD, &tokens.session.user_id), t.app.now())
            .await
            .unwrap();
        assert!(lock.is_some(), "the failure is recorded in a slot");
    }
}
