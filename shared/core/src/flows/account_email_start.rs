//! `POST /api/v1/account/email/start` (Bearer): sends a code to the email
//! to add. 409 when another user has it, or it is already verified here.

use crate::App;
use crate::app::Needs;
use crate::base::channel::Channel;
use crate::base::error::{Error, Result};
use crate::base::values::Email;
use crate::model::records::owner;
use crate::ports::table::Tx;
use crate::services::otp_sessions::{CodeSent, NewOtp, Purpose, open_otp, sent};
use crate::services::principal::authenticate;
use crate::services::profile::email_owner_key;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

/// The request, checked.
pub struct Request {
    pub email: Email,
    pub locale: String,
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(email: Option<&str>, locale: String, ip: Option<String>) -> Result<Self> {
        Ok(Self {
            email: Email::parse(email)?,
            locale,
            ip,
        })
    }
}

/// The access token is checked first (no token is a 401, whatever the
/// body), in the same read as the email's owner.
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<CodeSent> {
    let key = req.as_ref().ok().map(|r| email_owner_key(r.email.as_str()));
    let (p, found) = authenticate(app, token, |_| key.into_iter().collect()).await?;
    let req = req?;
    let email = req.email.into_string();
    let holder = found.into_iter().next().flatten();
    if holder.as_ref().and_then(owner).is_some_and(|u| u != p.user.id) {
        return Err(Error::Conflict("This email belongs to another account"));
    }
    if p.user.verified_email().is_some_and(|e| e.eq_ignore_ascii_case(&email)) {
        return Err(Error::Conflict("This email is already verified on the account"));
    }
    let opened = open_otp(
        app,
        NewOtp {
            purpose: Purpose::Email,
            phone: &p.user.phone,
            country: &p.user.country,
            user_id: Some(p.user.id.clone()),
            device_id: &p.session.device_id,
            channel: Channel::Email,
            destination: email,
            locale: req.locale,
            ip: req.ip.as_deref(),
            max_attempts: None,
        },
        Tx::new(),
        Vec::new(),
    )
    .await?;
    sent(app, &opened, Some(p.user.id.clone()), app.now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn an_email_another_user_verified_is_a_conflict() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let b = testing::signed_up(&t.app, "+255745051251", "e").await;
        testing::verify_email(&t, &a.access_token, "asha@example.com")
            .await
            .unwrap();
        let req = Request::parse(Some("Asha@Example.com"), "en".into(), None);
        let e = run(&t.app, Some(&b.access_token), req).await;
        assert_eq!(e.err().map(|e| e.code()), Some("CONFLICT"));
    }
}
