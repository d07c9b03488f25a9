//! `POST /api/v1/account/device/verify`: the code sent after a right first
//! factor (password, Google, Apple) on a device the account did not know.
//! Uses the deviceVerificationToken up; the device becomes known.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::otp::OtpCode;
use crate::base::tokens::{Claims, TokenKind};
use crate::model::claims::DeviceVerificationBody;
use crate::model::keys::user_key;
use crate::model::records::{User, from_item};
use crate::ports::table::Tx;
use crate::services::flow_tokens::already_used;
use crate::services::otp_sessions::{Purpose, check_code};
use crate::services::sessions::{DeviceInfo, Tokens, session_writes};
use crate::services::tiers::barred;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    ..Needs::NOTHING
};

/// The request, checked.
pub struct Request {
    pub verification: Claims<DeviceVerificationBody>,
    pub code: OtpCode,
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(app: &App, token: Option<&str>, otp: Option<&str>, ip: Option<String>) -> Result<Self> {
        let (tok, code) = (
            required(token, "deviceVerificationToken"),
            required(otp, "otp").and_then(|s| OtpCode::parse(s, 6, "otp")),
        )
            .all()?;
        let verification = app.keys()?.verify(TokenKind::DeviceVerification, tok, app.now())?;
        Ok(Self { verification, code, ip })
    }
}

pub async fn run(app: &App, req: Request) -> Result<(User, Tokens)> {
    let now = app.now();
    let claims = req.verification;
    let b = &claims.body;
    let checked = check_code(
        app,
        Purpose::Device,
        &b.phone,
        Some(&claims.jti),
        &req.code,
        vec![user_key(&b.uid)],
        req.ip.as_deref(),
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
    if barred(app, &user) {
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
    let mut tx = Tx::new();
    tx.add_or(checked.consume, already_used).add_all(writes);
    app.db.commit(tx).await.map_err(Error::from)?;
    info!(user = %user.id, sid = %tokens.session.sid, "device verified");
    Ok((user, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn the_code_must_be_six_digits_and_the_token_present() {
        let t = testing::app();
        match Request::parse(&t.app, None, Some("12a456"), None).err() {
            Some(Error::Validation(m)) => {
                assert_eq!(m.into_keys().collect::<Vec<_>>(), ["deviceVerificationToken", "otp"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_token_of_another_kind_is_refused() {
        let t = testing::app();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        let e = Request::parse(&t.app, Some(&tokens.access_token), Some("123456"), None).err();
        assert_eq!(e.map(|e| e.code()), Some("INVALID_TOKEN"));
    }
}
