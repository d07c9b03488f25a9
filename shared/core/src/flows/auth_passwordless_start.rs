//! `POST /api/v1/auth/passwordless-start`: uses the checkToken up, opens
//! the sign-in code session (replacing any earlier one for the phone) and
//! sends the code over the chosen channel; the tempToken carries the
//! session to verify-otp.

use crate::App;
use crate::app::Needs;
use crate::base::channel::Channel;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::phone::PhoneNumber;
use crate::base::tokens::Claims;
use crate::model::claims::CheckBody;
use crate::model::keys::{jti_key, user_key};
use crate::model::records::User;
use crate::model::table::Write;
use crate::ports::table::Tx;
use crate::services::flow_tokens::{already_used, check_token, use_jti};
use crate::services::numbers::check_country;
use crate::services::otp_sessions::{CodeSent, NewOtp, Purpose, open_otp, sent};

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

/// The request, checked.
pub struct Request {
    pub check: Claims<CheckBody>,
    pub channel: Channel,
    pub locale: String,
    /// The client's IP, for the per-IP send limit.
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(
        app: &App,
        check: Option<&str>,
        channel: Option<&str>,
        device_id: Option<&str>,
        locale: String,
        ip: Option<String>,
    ) -> Result<Self> {
        let (check, channel) = (
            check_token(app, check, device_id, app.now()),
            required(channel, "channel").and_then(Channel::parse),
        )
            .all()?;
        Ok(Self {
            check,
            channel,
            locale,
            ip,
        })
    }
}

pub async fn run(app: &App, req: Request) -> Result<CodeSent> {
    let now = app.now();
    let claims = req.check;
    let body = &claims.body;
    check_country(app, &PhoneNumber::from_trusted(&body.phone, &body.ctry), "identifier")?;
    let destination = match req.channel {
        Channel::Email => {
            let Some(uid) = &body.uid else {
                return Err(Error::ChannelNotAllowed("EMAIL is only available to existing users"));
            };
            let user: Option<User> = app.db.get(&user_key(uid), now).await?;
            user.as_ref()
                .and_then(User::verified_email)
                .map(str::to_owned)
                .ok_or(Error::NoVerifiedEmail)?
        }
        c if !app.settings.offers(c) => {
            return Err(Error::ChannelNotAllowed("This channel is not offered"));
        }
        _ => body.phone.clone(),
    };
    let mut use_check = Tx::new();
    use_check.add_or(use_jti(&claims.jti, claims.exp, now)?, already_used);
    let opened = open_otp(
        app,
        NewOtp {
            purpose: Purpose::Auth,
            phone: &body.phone,
            country: &body.ctry,
            user_id: body.uid.clone(),
            device_id: &body.did,
            channel: req.channel,
            destination,
            locale: req.locale,
            ip: req.ip.as_deref(),
            max_attempts: None,
        },
        use_check,
        // Give the checkToken back so the user can pick another channel.
        vec![Write::Delete {
            key: jti_key(&claims.jti),
            cond: None,
        }],
    )
    .await?;
    sent(app, &opened, body.uid.clone(), now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    const PHONE: &str = "+255745051250";

    fn request(t: &testing::TestApp, channel: &str) -> Request {
        let check = testing::check_token(&t.app, PHONE, "d", None);
        Request::parse(&t.app, Some(&check), Some(channel), Some("d"), "en".into(), None).unwrap()
    }

    #[tokio::test]
    async fn a_code_goes_out_once_per_check_token() {
        let t = testing::app();
        let check = testing::check_token(&t.app, PHONE, "d", None);
        let parse = || Request::parse(&t.app, Some(&check), Some("SMS"), Some("d"), "en".into(), None).unwrap();
        let sent = run(&t.app, parse()).await.unwrap();
        assert_eq!(sent.channel, Channel::Sms);
        assert!(t.sender.last_code_to(PHONE).is_some());
        assert_eq!(
            run(&t.app, parse()).await.err().map(|e| e.code()),
            Some("TOKEN_ALREADY_USED")
        );
    }

    #[tokio::test]
    async fn email_is_for_existing_users_only() {
        let t = testing::app();
        let e = run(&t.app, request(&t, "EMAIL")).await.err().map(|e| e.code());
        assert_eq!(e, Some("CHANNEL_NOT_ALLOWED"));
    }

    #[tokio::test]
    async fn an_undelivered_code_gives_the_check_token_back() {
        let t = testing::app();
        t.sender.fail(crate::base::channel::Pipe::Sms);
        let check = testing::check_token(&t.app, PHONE, "d", None);
        let parse = || Request::parse(&t.app, Some(&check), Some("SMS"), Some("d"), "en".into(), None).unwrap();
        assert_eq!(
            run(&t.app, parse()).await.err().map(|e| e.code()),
            Some("DELIVERY_FAILED")
        );
        t.sender.heal(crate::base::channel::Pipe::Sms);
        assert!(run(&t.app, parse()).await.is_ok(), "the checkToken is usable again");
    }
}
