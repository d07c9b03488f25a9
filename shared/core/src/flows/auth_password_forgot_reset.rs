//! `POST /api/v1/auth/password/forgot/reset`: the new password. Ends every
//! session of the user (one write: the session epoch moves on) and signs
//! the reset's device in afresh. Uses the resetToken up.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::ids::UserId;
use crate::base::tokens::{Claims, TokenKind};
use crate::base::values::{DeviceExtras, Password};
use crate::model::claims::ResetBody;
use crate::model::keys::{cred_key, jti_key, user_key};
use crate::model::records::{User, from_item};
use crate::model::table::{Cond, Update, Write};
use crate::ports::events::{Event, EventType};
use crate::ports::table::Tx;
use crate::services::credentials::Lockout;
use crate::services::events::emit;
use crate::services::flow_tokens::{already_used, use_jti};
use crate::services::secret_hash::hash_secret;
use crate::services::sessions::{DeviceInfo, Tokens, session_writes};

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    events: true,
    ..Needs::NOTHING
};

/// The request as the client sent it.
pub struct Raw<'a> {
    pub reset_token: Option<&'a str>,
    pub new_password: Option<&'a str>,
    pub confirm: Option<&'a str>,
    /// The new session's device name and platform (optional, as at
    /// sign-in; `WEB` also gets the refresh cookie).
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
}

/// The request, checked: the confirmation matches the new password.
pub struct Request {
    pub reset: Claims<ResetBody>,
    pub password: Password,
    pub extras: DeviceExtras,
}

impl Request {
    pub fn parse(app: &App, raw: Raw<'_>) -> Result<Self> {
        let (tok, password, confirm, extras) = (
            required(raw.reset_token, "resetToken"),
            Password::new_choice(raw.new_password, "newPassword"),
            required(raw.confirm, "confirmPassword"),
            DeviceExtras::parse(raw.device_name, raw.platform),
        )
            .all()?;
        if !password.same_as(confirm) {
            return Err(Error::PasswordMismatch);
        }
        let reset = app.keys()?.verify(TokenKind::Reset, tok, app.now())?;
        Ok(Self {
            reset,
            password,
            extras,
        })
    }
}

pub async fn run(app: &App, req: Request) -> Result<(User, Tokens)> {
    let now = app.now();
    let claims = req.reset;
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
    let hash = hash_secret(app, req.password.secret()).await?;
    let old_epoch = user.session_epoch;
    user.session_epoch = old_epoch.saturating_add(1);
    user.has_password = true;
    let device = DeviceInfo {
        device_id: claims.body.did.clone(),
        device_name: req.extras.name,
        platform: req.extras.platform,
    };
    let (writes, tokens) = session_writes(app, &user, &device, vec!["pwd".into(), "reset".into()], now)?;
    let mut tx = Tx::new();
    // Another reset (or a block) moved the epoch first: that is the answer
    // even when the token was used meanwhile too.
    tx.add_or(
        Write::Update {
            key: user_key(&uid),
            ops: vec![
                Update::set("session_epoch", user.session_epoch),
                Update::set("has_password", true),
            ],
            cond: Some(Cond::eq("session_epoch", old_epoch)),
        },
        || Error::invalid_flow_token("The account changed meanwhile. Start again"),
    )
    .add_or(use_jti(&claims.jti, claims.exp, now)?, already_used)
    .add(Write::Update {
        key: cred_key(&uid),
        ops: vec![Update::set("password_hash", hash.as_str())],
        cond: None,
    })
    .add(Lockout::password(app, &uid).clear())
    .add_all(writes);
    app.db.commit(tx).await.map_err(Error::from)?;
    info!(user = %user.id, "password reset: every session revoked");
    let data = serde_json::json!({"reason": "password_reset", "all_sessions": true});
    emit(app, Event::new(EventType::SessionRevoked, Some(&user), data, now)).await?;
    Ok((user, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn the_confirmation_must_match_before_the_token_is_read() {
        let t = testing::app();
        let raw = Raw {
            reset_token: Some("x"),
            new_password: Some("correct horse"),
            confirm: Some("correct house"),
            device_name: None,
            platform: None,
        };
        assert_eq!(
            Request::parse(&t.app, raw).err().map(|e| e.code()),
            Some("PASSWORD_MISMATCH")
        );
    }
}
