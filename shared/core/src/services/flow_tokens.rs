//! Flow tokens (checkToken, tempToken, onboardingToken, …; docs/DESIGN.md
//! §3): short-lived JWTs that carry a sign-in from one endpoint to the
//! next, bound to the phone and the device, each single use.

use serde_json::Value;

use crate::App;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::ids::DeviceId;
use crate::base::tokens::{Claims, TokenKind};
use crate::model::claims::{CheckBody, TempBody};
use crate::model::keys::jti_key;
use crate::model::records::to_item;
use crate::model::table::{Cond, EXPIRES_AT, Item, Write};

/// A checkToken and its binding to the request's `deviceId` (both fields'
/// 422s at once; then 403 for a bad token, `DEVICE_MISMATCH` for another
/// device's).
pub fn check_token(app: &App, token: Option<&str>, device_id: Option<&str>, now: i64) -> Result<Claims<CheckBody>> {
    let (tok, dev) = (
        required(token, "checkToken"),
        required(device_id, "deviceId").and_then(DeviceId::parse),
    )
        .all()?;
    let claims: Claims<CheckBody> = app.keys()?.verify(TokenKind::Check, tok, now)?;
    if claims.body.did != dev.as_str() {
        return Err(Error::DeviceMismatch);
    }
    Ok(claims)
}

/// A tempToken (field `tempToken`): its claims, whatever their purpose.
pub fn temp_token(app: &App, token: Option<&str>, now: i64) -> Result<Claims<TempBody>> {
    let tok = required(token, "tempToken")?;
    app.keys()?.verify(TokenKind::Temp, tok, now)
}

/// The write that uses a single-use JWT up by its `jti` (a marker kept
/// until the token would have expired anyway); its condition fails when the
/// token was used already.
pub fn use_jti(jti: &str, exp: i64, now: i64) -> Result<Write> {
    let mut used = Item::new();
    used.insert(EXPIRES_AT.into(), Value::from(exp));
    Ok(Write::Put {
        item: to_item(&jti_key(jti), &used)?,
        cond: Some(Cond::absent_at(now)),
    })
}

/// The refusal of a write that uses up a single-use token or code.
pub fn already_used() -> Error {
    Error::TokenAlreadyUsed
}
