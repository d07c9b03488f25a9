//! `POST /api/v1/auth/passwordless/channels`: the channels a code can be
//! sent to — the deployment's pipes for the phone, and a returning user's
//! verified email. Does not use the checkToken up.

use serde::Serialize;

use crate::App;
use crate::app::Needs;
use crate::base::channel::Pipe;
use crate::base::error::{Error, Result};
use crate::base::mask::{mask_email, mask_phone};
use crate::base::tokens::Claims;
use crate::model::claims::CheckBody;
use crate::model::keys::{jti_key, user_key};
use crate::model::records::{User, from_item};
use crate::services::flow_tokens::check_token;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    ..Needs::NOTHING
};

/// The request, checked: a checkToken bound to the request's device.
pub struct Request {
    pub check: Claims<CheckBody>,
}

impl Request {
    pub fn parse(app: &App, check: Option<&str>, device_id: Option<&str>) -> Result<Self> {
        Ok(Self {
            check: check_token(app, check, device_id, app.now())?,
        })
    }
}

/// One channel the user can pick.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelOption {
    pub channel: Pipe,
    pub masked: String,
    pub is_primary: bool,
}

/// The pipes offered to this user (403 once the checkToken was used).
pub async fn run(app: &App, req: Request) -> Result<Vec<ChannelOption>> {
    let now = app.now();
    let claims = req.check;
    let mut keys = vec![jti_key(&claims.jti)];
    if let Some(uid) = &claims.body.uid {
        keys.push(user_key(uid));
    }
    let found = app.db.batch_get(&keys, now).await?;
    if found.first().is_some_and(Option::is_some) {
        return Err(Error::TokenAlreadyUsed);
    }
    let user: Option<User> = found.into_iter().nth(1).flatten().map(from_item).transpose()?;
    let masked = mask_phone(&claims.body.phone);
    let primary = app.settings.primary_pipe();
    let mut out: Vec<ChannelOption> = app
        .settings
        .channels
        .iter()
        .map(|p| ChannelOption {
            channel: *p,
            masked: masked.clone(),
            is_primary: *p == primary,
        })
        .collect();
    if let Some(email) = user.as_ref().and_then(User::verified_email) {
        out.push(ChannelOption {
            channel: Pipe::Email,
            masked: mask_email(email),
            is_primary: false,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_new_number_is_offered_the_deployment_s_pipes_with_the_primary_marked() {
        let t = testing::app();
        let check = testing::check_token(&t.app, "+255745051250", "d", None);
        let req = Request::parse(&t.app, Some(&check), Some("d")).unwrap();
        let out = run(&t.app, req).await.unwrap();
        assert_eq!(out.iter().filter(|c| c.is_primary).count(), 1);
        assert!(
            out.iter()
                .all(|c| c.channel != Pipe::Email && c.masked == "••• ••• ••50")
        );
    }

    #[test]
    fn another_device_s_check_token_is_a_device_mismatch() {
        let t = testing::app();
        let tok = testing::check_token(&t.app, "+255745051250", "d1", None);
        let e = Request::parse(&t.app, Some(&tok), Some("d2")).err().map(|e| e.code());
        assert_eq!(e, Some("DEVICE_MISMATCH"));
    }
}
