//! `POST /api/v1/auth/check`: the entry point of every flow. Tells whether
//! the phone is registered and returns a checkToken bound to phone and
//! device, with the nonce a Google or Apple idToken must carry to sign in
//! with it.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::base::fields::{AllFields, required};
use crate::base::ids::{DeviceId, random_base62};
use crate::base::phone::PhoneNumber;
use crate::base::rates::Rule;
use crate::base::tokens::TokenKind;
use crate::model::claims::CheckBody;
use crate::model::records::User;
use crate::services::limits::{Counter, limited, use_one};
use crate::services::numbers::{check_country, parse_phone};

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    ..Needs::NOTHING
};

/// The request, checked.
#[derive(Debug)]
pub struct Request {
    pub phone: PhoneNumber,
    pub device: DeviceId,
    /// The client's IP, for the per-IP limit on checks.
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(app: &App, identifier: Option<&str>, device_id: Option<&str>, ip: Option<String>) -> Result<Self> {
        let (phone, device) = (
            required(identifier, "identifier").and_then(|s| parse_phone(app, s, "identifier")),
            required(device_id, "deviceId").and_then(DeviceId::parse),
        )
            .all()?;
        check_country(app, &phone, "identifier")?;
        Ok(Self { phone, device, ip })
    }
}

/// What the check found.
pub struct Checked {
    pub phone: PhoneNumber,
    pub user: Option<User>,
    pub check_token: String,
    /// The nonce a Google or Apple idToken must carry to sign in with this
    /// checkToken (the app passes it to the provider's SDK).
    pub oauth_nonce: String,
}

/// Counts the check against the caller's IP (a check tells whether a
/// number is registered), reads the user and issues the checkToken.
pub async fn run(app: &App, req: Request) -> Result<Checked> {
    let now = app.now();
    let phone = req.phone;
    if let Some(ip) = req.ip.as_deref().filter(|_| limited(app, phone.e164())) {
        let c = Counter::new(Rule::CheckIp, ip, app.settings.limits.check_ip, now);
        use_one(app, &c, phone.country(), now).await?;
    }
    let user = app.db.user_by_phone(phone.e164(), now).await?;
    let oauth_nonce = random_base62()?;
    let body = CheckBody {
        phone: phone.e164().to_owned(),
        ctry: phone.country().to_owned(),
        did: req.device.as_str().to_owned(),
        uid: user.as_ref().map(|u| u.id.clone()),
        non: Some(oauth_nonce.clone()),
    };
    let (check_token, _) = app.keys()?.issue(TokenKind::Check, phone.e164(), body, now)?;
    info!(phone = %phone, exists = user.is_some(), "phone checked");
    Ok(Checked {
        phone,
        user,
        check_token,
        oauth_nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::error::Error;
    use crate::testing;

    const PHONE: &str = "+255745051250";

    fn fields(e: Error) -> Vec<String> {
        match e {
            Error::Validation(m) => m.into_keys().collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn both_bad_fields_are_named_at_once() {
        let t = testing::app();
        let e = Request::parse(&t.app, Some("not a number"), None, None).unwrap_err();
        assert_eq!(fields(e), ["deviceId", "identifier"]);
    }

    #[tokio::test]
    async fn a_new_number_gets_a_check_token_bound_to_the_device_and_no_user() {
        let t = testing::app();
        let req = Request::parse(&t.app, Some(PHONE), Some("dev-1"), None).unwrap();
        let out = run(&t.app, req).await.unwrap();
        assert!(out.user.is_none());
        let claims: crate::base::tokens::Claims<CheckBody> = t
            .app
            .keys()
            .unwrap()
            .verify(TokenKind::Check, &out.check_token, t.app.now())
            .unwrap();
        assert_eq!(
            (claims.body.did.as_str(), claims.body.non),
            ("dev-1", Some(out.oauth_nonce))
        );
    }

    #[tokio::test]
    async fn checks_from_one_ip_are_limited() {
        let mut s = testing::settings();
        s.limits.enabled = true;
        s.limits.check_ip = crate::base::rates::Rate { limit: 2, window: 60 };
        let t = testing::app_with(std::sync::Arc::new(crate::ports::memory::MemoryTable::new()), s);
        for expected in ["ok", "ok", "RATE_LIMITED"] {
            let req = Request::parse(&t.app, Some(PHONE), Some("dev-1"), Some("198.51.100.7".into())).unwrap();
            let got = run(&t.app, req).await.map(|_| "ok").unwrap_or_else(|e| e.code());
            assert_eq!(got, expected);
        }
    }
}
