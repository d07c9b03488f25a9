//! `PUT /api/v1/account/pin` (Bearer): sets a first PIN (after a fresh
//! code), or changes it with the current one (`currentPin`, compared in an
//! attempt slot). A PIN is 4–6 digits and not an easy one (1234, 0000, …).

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::base::values::Pin;
use crate::services::credentials::{CredentialSet, LOCK_PIN, authorize_change, store_credential};
use crate::services::profile::AuthMethods;
use crate::services::secret_hash::hash_secret;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    ..Needs::NOTHING
};

/// The request, checked: the new PIN (the current one is checked against
/// the stored hash).
pub struct Request {
    pub pin: Pin,
    pub current: Option<String>,
}

impl Request {
    pub fn parse(pin: Option<&str>, current: Option<&str>) -> Result<Self> {
        Ok(Self {
            pin: Pin::new_choice(pin, "pin")?,
            current: current.map(str::to_owned),
        })
    }
}

/// The access token is checked first (no token is a 401, whatever the
/// body), then the request.
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<CredentialSet> {
    let (p, lock, req) = authorize_change(app, token, LOCK_PIN, req, |r| r.current.as_deref(), "currentPin").await?;
    let hash = hash_secret(app, req.pin.secret()).await?;
    let user = store_credential(app, &p, &lock, LOCK_PIN, hash).await?;
    info!(user = %user.id, "PIN set");
    Ok(CredentialSet {
        auth_methods: AuthMethods::of(&user),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_first_pin_needs_a_fresh_code() {
        let t = testing::app();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        t.clock.advance(t.app.settings.fresh_auth + 1);
        let late = run(&t.app, Some(&tokens.access_token), Request::parse(Some("1357"), None)).await;
        assert_eq!(late.err().map(|e| e.code()), Some("FACTOR_REQUIRED"));
    }

    #[tokio::test]
    async fn an_easy_pin_is_a_422_after_the_token_is_checked() {
        let t = testing::app();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        let weak = run(&t.app, Some(&tokens.access_token), Request::parse(Some("1234"), None)).await;
        assert_eq!(weak.err().map(|e| e.code()), Some("VALIDATION_ERROR"));
        let anon = run(&t.app, None, Request::parse(Some("1234"), None)).await;
        assert_eq!(anon.err().map(|e| e.code()), Some("UNAUTHORIZED"));
    }
}
