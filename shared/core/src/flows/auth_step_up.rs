//! `POST /api/v1/auth/step-up` (Bearer): the PIN mints a 5-minute token
//! for `scope`, used once by an integrator (`/step-up/consume`). The PIN is
//! compared in an attempt slot: `PIN_MAX_FAILURES` wrong PINs lock it for
//! `LOCKOUT_SECONDS`, at any concurrency.

use serde::Serialize;
use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::AllFields;
use crate::base::tokens::TokenKind;
use crate::base::values::{Pin, Scope};
use crate::model::claims::StepUpBody;
use crate::model::keys::{cred_key, lock_key};
use crate::model::records::{Credentials, from_item};
use crate::services::credentials::{LOCK_PIN, Lockout, check_in_slot};
use crate::services::principal::authenticate;
use crate::services::secret_hash::verify_secret;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    ..Needs::NOTHING
};

/// The request, checked: the PIN as presented (4–6 digits) and the scope.
pub struct Request {
    pub pin: Pin,
    pub scope: Scope,
}

impl Request {
    pub fn parse(pin: Option<&str>, scope: Option<&str>) -> Result<Self> {
        let (pin, scope) = (Pin::presented(pin, "pin"), Scope::parse(scope)).all()?;
        Ok(Self { pin, scope })
    }
}

/// A step-up token and what it allows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SteppedUp {
    pub step_up_token: String,
    pub scope: String,
    pub expires_in: i64,
}

/// The access token is checked first (no token is a 401, whatever the
/// body), in the same read as the credentials and the PIN's lock.
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<SteppedUp> {
    let now = app.now();
    let (p, found) = authenticate(app, token, |uid| vec![cred_key(uid), lock_key(LOCK_PIN, uid)]).await?;
    let req = req?;
    let mut it = found.into_iter();
    let creds: Credentials = it.next().flatten().map(from_item).transpose()?.unwrap_or_default();
    let lock_item = it.next().flatten();
    let lock = Lockout::pin(app, &p.user.id);
    let Some(hash) = creds.pin_hash else {
        // Same cost as a wrong PIN, then say so.
        verify_secret(app, req.pin.secret(), None).await?;
        return Err(Error::PinNotSet);
    };
    let slot = check_in_slot(app, &lock, lock_item, req.pin.secret(), &hash).await?;
    if slot.others_busy {
        // Earlier failures end with a right PIN.
        app.db.delete(&lock.key, None).await?;
    }
    let scope = req.scope.into_string();
    let body = StepUpBody {
        scope: scope.clone(),
        sid: p.session.sid.clone(),
    };
    let (step_up_token, _) = app.keys()?.issue(TokenKind::StepUp, p.user.id.as_str(), body, now)?;
    info!(user = %p.user.id, scope = %scope, "step-up token issued");
    Ok(SteppedUp {
        step_up_token,
        scope,
        expires_in: TokenKind::StepUp.ttl(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn without_a_pin_there_is_no_step_up() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let e = run(
            &t.app,
            Some(&a.access_token),
            Request::parse(Some("1357"), Some("payments:send")),
        )
        .await;
        assert_eq!(e.err().map(|e| e.code()), Some("PIN_NOT_SET"));
    }

    #[tokio::test]
    async fn the_right_pin_mints_a_token_for_the_scope() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        testing::set_pin(&t.app, &a, "1357").await;
        let out = run(
            &t.app,
            Some(&a.access_token),
            Request::parse(Some("1357"), Some("payments:send")),
        )
        .await;
        assert_eq!(out.unwrap().scope, "payments:send");
        let wrong = run(
            &t.app,
            Some(&a.access_token),
            Request::parse(Some("2468"), Some("payments:send")),
        )
        .await;
        assert_eq!(wrong.err().map(|e| e.code()), Some("INVALID_CREDENTIALS"));
    }
}
