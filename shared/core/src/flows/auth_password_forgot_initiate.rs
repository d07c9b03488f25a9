//! `POST /api/v1/auth/password/forgot/initiate`: a code to the phone of an
//! account with a password. Does not use the checkToken up (a used one is
//! still refused).

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::mask::mask_phone;
use crate::base::tokens::Claims;
use crate::model::claims::CheckBody;
use crate::model::keys::{cred_key, jti_key, user_key};
use crate::model::records::{Credentials, User, from_item};
use crate::ports::table::Tx;
use crate::services::device_check::primary_channel;
use crate::services::flow_tokens::check_token;
use crate::services::otp_sessions::{NewOtp, Purpose, open_otp, sent};

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

/// The request, checked: a checkToken bound to the request's device.
pub struct Request {
    pub check: Claims<CheckBody>,
    pub locale: String,
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(
        app: &App,
        check: Option<&str>,
        device_id: Option<&str>,
        locale: String,
        ip: Option<String>,
    ) -> Result<Self> {
        Ok(Self {
            check: check_token(app, check, device_id, app.now())?,
            locale,
            ip,
        })
    }
}

/// What was sent.
#[derive(Debug)]
pub struct ResetStarted {
    pub temp_token: String,
    pub masked_phone: String,
    pub expires_in: i64,
    pub sandbox_otp: Option<String>,
}

pub async fn run(app: &App, req: Request) -> Result<ResetStarted> {
    let now = app.now();
    let claims = req.check;
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
            purpose: Purpose::Reset,
            phone: &user.phone,
            country: &user.country,
            user_id: Some(user.id.clone()),
            device_id: &claims.body.did,
            channel: primary_channel(app),
            destination: user.phone.clone(),
            locale: req.locale,
            ip: req.ip.as_deref(),
            max_attempts: None,
        },
        Tx::new(),
        Vec::new(),
    )
    .await?;
    let sent = sent(app, &opened, Some(user.id.clone()), now)?;
    info!(user = %user.id, "password reset code sent");
    Ok(ResetStarted {
        temp_token: sent.temp_token,
        masked_phone: mask_phone(&user.phone),
        expires_in: sent.expires_in,
        sandbox_otp: sent.sandbox_otp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn an_account_without_a_password_has_nothing_to_reset() {
        let t = testing::app();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        let check = testing::check_token(&t.app, "+255745051250", "d", Some(tokens.session.user_id.clone()));
        let req = Request::parse(&t.app, Some(&check), Some("d"), "en".into(), None).unwrap();
        assert_eq!(run(&t.app, req).await.err().map(|e| e.code()), Some("PASSWORD_NOT_SET"));
    }

    #[tokio::test]
    async fn an_unknown_number_is_not_found() {
        let t = testing::app();
        let check = testing::check_token(&t.app, "+255745051250", "d", None);
        let req = Request::parse(&t.app, Some(&check), Some("d"), "en".into(), None).unwrap();
        assert_eq!(run(&t.app, req).await.err().map(|e| e.code()), Some("NOT_FOUND"));
    }
}
