//! `PUT /api/v1/account/password` (Bearer): sets a first password (after a
//! fresh code), or changes it with the current one (`currentPassword`,
//! compared in an attempt slot).

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::values::Password;
use crate::services::credentials::{CredentialSet, LOCK_PASSWORD, authorize_change, store_credential};
use crate::services::profile::AuthMethods;
use crate::services::secret_hash::hash_secret;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    ..Needs::NOTHING
};

/// The request as the client sent it.
pub struct Raw<'a> {
    pub new_password: Option<&'a str>,
    pub confirm: Option<&'a str>,
    pub current: Option<&'a str>,
}

/// The request, checked: the new password (and its confirmation, when
/// given, matches it). The current one is checked against the stored hash.
pub struct Request {
    pub new: Password,
    pub current: Option<String>,
}

impl Request {
    /// A mismatch is refused here, before the current password is checked:
    /// a request that cannot succeed takes no attempt slot.
    pub fn parse(raw: Raw<'_>) -> Result<Self> {
        let new = Password::new_choice(raw.new_password, "newPassword")?;
        if let Some(c) = raw.confirm
            && !new.same_as(c)
        {
            return Err(Error::PasswordMismatch);
        }
        Ok(Self {
            new,
            current: raw.current.map(str::to_owned),
        })
    }
}

/// The access token is checked first (no token is a 401, whatever the
/// body), then the request.
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<CredentialSet> {
    let (p, lock, req) = authorize_change(
        app,
        token,
        LOCK_PASSWORD,
        req,
        |r| r.current.as_deref(),
        "currentPassword",
    )
    .await?;
    let hash = hash_secret(app, req.new.secret()).await?;
    let user = store_credential(app, &p, &lock, LOCK_PASSWORD, hash).await?;
    info!(user = %user.id, "password set");
    Ok(CredentialSet {
        auth_methods: AuthMethods::of(&user),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn raw<'a>(new: &'a str, confirm: Option<&'a str>, current: Option<&'a str>) -> Raw<'a> {
        Raw {
            new_password: Some(new),
            confirm,
            current,
        }
    }

    #[test]
    fn a_confirmation_that_differs_is_refused_before_anything_is_read() {
        let e = Request::parse(raw("correct horse", Some("correct house"), None))
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("PASSWORD_MISMATCH"));
    }

    #[tokio::test]
    async fn a_set_password_changes_only_with_the_current_one() {
        let t = testing::app();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        let at = Some(tokens.access_token.as_str());
        run(&t.app, at, Request::parse(raw("correct horse", None, None)))
            .await
            .unwrap();
        let without = run(&t.app, at, Request::parse(raw("another horse", None, None))).await;
        assert_eq!(without.err().map(|e| e.code()), Some("VALIDATION_ERROR"));
        let wrong = run(&t.app, at, Request::parse(raw("another horse", None, Some("nope")))).await;
        assert_eq!(wrong.err().map(|e| e.code()), Some("INVALID_CREDENTIALS"));
        let right = run(
            &t.app,
            at,
            Request::parse(raw("another horse", None, Some("correct horse"))),
        )
        .await;
        assert!(right.is_ok_and(|s| s.auth_methods.password));
    }

    #[tokio::test]
    async fn no_token_is_a_401_whatever_the_body() {
        let t = testing::app();
        let e = run(&t.app, None, Request::parse(raw("short", None, None))).await;
        assert_eq!(e.err().map(|e| e.code()), Some("UNAUTHORIZED"));
    }
}
