//! `POST /api/v1/auth/login/oauth`: signs in with a linked Google or Apple
//! account. Uses the checkToken up, whose nonce the idToken must carry. On
//! a device the account does not know, answers `VERIFY_DEVICE` and sends a
//! code, as a password sign-in does.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::crypto::ct_eq;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::tokens::Claims;
use crate::base::values::{DeviceExtras, Provider};
use crate::model::claims::CheckBody;
use crate::model::keys::{device_key, jti_key, user_key};
use crate::model::records::{User, from_item};
use crate::ports::table::Tx;
use crate::services::device_check::{DeviceCheck, SignIn, device_check};
use crate::services::flow_tokens::{already_used, check_token, use_jti};
use crate::services::oauth::{check_id_token, enabled, linked};
use crate::services::sessions::{DeviceInfo, device_proven, session_writes};
use crate::services::tiers::barred;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    senders: true,
    oauth: true,
    ..Needs::NOTHING
};

/// The request as the client sent it.
pub struct Raw<'a> {
    pub check_token: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub id_token: Option<&'a str>,
    pub device_id: Option<&'a str>,
    /// The device's proof that it is known (body `deviceToken`, or the web cookie).
    pub device_token: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub locale: String,
    pub ip: Option<String>,
    /// The client's own value, echoed back (at most 512 characters).
    pub state: Option<&'a str>,
}

/// The request, checked.
pub struct Request {
    pub check: Claims<CheckBody>,
    pub provider: Provider,
    pub id_token: String,
    pub extras: DeviceExtras,
    pub device_token: Option<String>,
    pub locale: String,
    pub ip: Option<String>,
    pub state: Option<String>,
}

impl Request {
    pub fn parse(app: &App, raw: Raw<'_>) -> Result<Self> {
        if raw.state.is_some_and(|s| s.len() > 512) {
            return Err(Error::field("state", "must be at most 512 characters"));
        }
        let (check, provider, id_token, extras) = (
            check_token(app, raw.check_token, raw.device_id, app.now()),
            required(raw.provider, "provider").and_then(|p| Provider::parse(p, "provider")),
            required(raw.id_token, "idToken"),
            DeviceExtras::parse(raw.device_name, raw.platform),
        )
            .all()?;
        Ok(Self {
            check,
            provider,
            id_token: id_token.to_owned(),
            extras,
            device_token: raw.device_token.map(str::to_owned),
            locale: raw.locale,
            ip: raw.ip,
            state: raw.state.map(str::to_owned),
        })
    }
}

pub async fn run(app: &App, req: Request) -> Result<SignIn> {
    let now = app.now();
    let provider = req.provider;
    enabled(app, provider)?;
    let claims = req.check;
    let Some(uid) = claims.body.uid.clone() else {
        return Err(Error::OauthNotLinked);
    };
    let Some(nonce) = claims.body.non.clone() else {
        // A checkToken from before nonces: start again at /auth/check.
        return Err(Error::invalid_flow_token(
            "This checkToken carries no nonce. Start again",
        ));
    };
    let keys = [jti_key(&claims.jti), user_key(&uid), device_key(&uid, &claims.body.did)];
    let mut it = app.db.batch_get(&keys, now).await?.into_iter();
    if it.next().flatten().is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let user: User = it
        .next()
        .flatten()
        .map(from_item)
        .transpose()?
        .ok_or(Error::OauthNotLinked)?;
    let known_device = device_proven(it.next().flatten(), req.device_token.as_deref())?;
    let Some(linked_sub) = linked(provider, &user).map(str::to_owned) else {
        return Err(Error::OauthNotLinked);
    };
    let identity = check_id_token(app, provider, &req.id_token, &nonce).await?;
    if !ct_eq(identity.sub.as_bytes(), linked_sub.as_bytes()) {
        return Err(Error::invalid_flow_token(
            "This idToken is not of the account linked to this user",
        ));
    }
    if barred(app, &user) {
        return Err(Error::AccountBlocked);
    }
    let device = DeviceInfo {
        device_id: claims.body.did.clone(),
        device_name: req.extras.name,
        platform: req.extras.platform,
    };
    let mut tx = Tx::new();
    tx.add_or(use_jti(&claims.jti, claims.exp, now)?, already_used);
    if !known_device {
        let check = DeviceCheck {
            user: &user,
            device,
            first_factor: provider.amr(),
            locale: req.locale,
            ip: req.ip.as_deref(),
            check_jti: &claims.jti,
        };
        return device_check(app, check, tx).await;
    }
    let (writes, tokens) = session_writes(app, &user, &device, vec![provider.amr().to_owned()], now)?;
    tx.add_all(writes);
    app.db.commit(tx).await.map_err(Error::from)?;
    info!(user = %user.id, provider = provider.as_str(), sid = %tokens.session.sid, "signed in with a provider");
    Ok(SignIn::SignedIn {
        user: Box::new(user),
        tokens: Box::new(tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    const PHONE: &str = "+255745051250";

    fn raw<'a>(check: &'a str, id_token: &'a str, device_token: Option<&'a str>) -> Raw<'a> {
        Raw {
            check_token: Some(check),
            provider: Some("GOOGLE"),
            id_token: Some(id_token),
            device_id: Some("d"),
            device_token,
            device_name: None,
            platform: None,
            locale: "en".into(),
            ip: None,
            state: None,
        }
    }

    #[tokio::test]
    async fn a_linked_subject_signs_a_known_device_in_with_the_check_token_s_nonce() {
        let (t, fake) = testing::app_with_fake_providers();
        let tokens = testing::signed_up(&t.app, PHONE, "d").await;
        testing::link_google(&t.app, &tokens.access_token, "g-1").await.unwrap();
        let dt = tokens.device_token.as_ref().map(|d| d.expose().to_owned()).unwrap();
        let check = testing::check_token(&t.app, PHONE, "d", Some(tokens.session.user_id.clone()));
        let out = run(
            &t.app,
            Request::parse(&t.app, raw(&check, "good:g-1", Some(&dt))).unwrap(),
        )
        .await;
        assert!(matches!(out, Ok(SignIn::SignedIn { .. })), "{out:?}");
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(calls.last().map(|(_, n)| n.as_str()), Some("nonce-d"));
    }

    #[tokio::test]
    async fn another_subject_is_refused() {
        let (t, _) = testing::app_with_fake_providers();
        let tokens = testing::signed_up(&t.app, PHONE, "d").await;
        testing::link_google(&t.app, &tokens.access_token, "g-1").await.unwrap();
        let check = testing::check_token(&t.app, PHONE, "d", Some(tokens.session.user_id.clone()));
        let out = run(&t.app, Request::parse(&t.app, raw(&check, "good:g-2", None)).unwrap()).await;
        assert_eq!(out.err().map(|e| e.code()), Some("INVALID_TOKEN"));
    }
}
