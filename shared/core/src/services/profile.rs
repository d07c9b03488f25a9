//! Changes to the signed-in user's own profile: each is one transaction
//! that also re-checks the session epoch, and answers with a new access
//! token (same session) carrying the new onboarding flags.

use serde::Serialize;

use crate::App;
use crate::base::error::{Error, Result};
use crate::model::keys::{email_key, user_key};
use crate::model::records::{OnboardingFlags, User};
use crate::model::table::{Cond, Key, Update, Write};
use crate::ports::table::Tx;
use crate::services::principal::{Principal, session_ended};
use crate::services::sessions::access_token;

/// How the user can sign in.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AuthMethods {
    pub passwordless: bool,
    pub password: bool,
    pub google: bool,
    pub apple: bool,
    pub pin: bool,
}

impl AuthMethods {
    pub fn of(user: &User) -> Self {
        Self {
            passwordless: true,
            password: user.has_password,
            google: user.google,
            apple: user.apple,
            pin: user.has_pin,
        }
    }
}

/// A profile change: the new access token (same session) with the new flags.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Updated {
    pub access_token: String,
    pub onboarding: OnboardingFlags,
}

/// Applies `ops` to the caller's user item in one transaction with `tx`
/// (whose refusals come first), and re-issues the access token of the
/// session. `user` is the user as it is after the change. When every
/// session of the user was ended meanwhile (a reset, a block), nothing is
/// written and the answer is 401.
pub async fn commit_profile(app: &App, p: &Principal, user: &User, ops: Vec<Update>, mut tx: Tx) -> Result<Updated> {
    let now = app.now();
    tx.add_or(
        Write::Update {
            key: user_key(&user.id),
            ops,
            cond: Some(Cond::Exists.and(Cond::eq("session_epoch", p.user.session_epoch))),
        },
        session_ended,
    );
    app.db.commit(tx).await.map_err(Error::from)?;
    Ok(Updated {
        access_token: access_token(app, user, &p.session, now)?,
        onboarding: user.flags(),
    })
}

/// The key an email is unique under (the whole address lowercased).
pub fn email_owner_key(email: &str) -> Key {
    email_key(&email.to_lowercase())
}
