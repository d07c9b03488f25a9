//! `POST /api/v1/account/oauth/link` (Bearer): links the idToken's subject
//! to the caller. Needs a fresh proof (a code within `FRESH_AUTH_SECONDS`,
//! or the PIN, compared in an attempt slot) and an idToken carrying a nonce
//! the service issued to the caller, which the link uses up. 409 when the
//! subject is linked to another user, or another subject of the same
//! provider is linked here.

use secrecy::SecretString;
use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::values::Provider;
use crate::model::keys::{cred_key, lock_key, nonce_key, oauth_key, user_key};
use crate::model::records::{Credentials, from_item, owner, owner_item, to_item};
use crate::model::table::{Cond, EXPIRES_AT, Update, Write};
use crate::ports::table::Tx;
use crate::services::credentials::{LOCK_PIN, Lockout, check_in_slot};
use crate::services::oauth::{Linked, attrs, check_id_token, enabled, linked};
use crate::services::principal::{authenticate, fresh_otp};
use crate::services::profile::AuthMethods;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    oauth: true,
    ..Needs::NOTHING
};

/// The request as the client sent it.
pub struct Raw<'a> {
    pub provider: Option<&'a str>,
    pub id_token: Option<&'a str>,
    /// The nonce from `POST /account/oauth/nonce` that the idToken carries.
    pub nonce: Option<&'a str>,
    /// The PIN, as the fresh proof when the session's code is not fresh.
    pub pin: Option<&'a str>,
}

/// The request, checked.
pub struct Request {
    pub provider: Provider,
    pub id_token: String,
    pub nonce: String,
    pub pin: Option<String>,
}

impl Request {
    pub fn parse(raw: Raw<'_>) -> Result<Self> {
        let (provider, id_token, nonce) = (
            required(raw.provider, "provider").and_then(|p| Provider::parse(p, "provider")),
            required(raw.id_token, "idToken"),
            required(raw.nonce, "nonce").and_then(|n| {
                if n.len() <= 64 {
                    Ok(n)
                } else {
                    Err(Error::field("nonce", "is not a nonce this service issued"))
                }
            }),
        )
            .all()?;
        Ok(Self {
            provider,
            id_token: id_token.to_owned(),
            nonce: nonce.to_owned(),
            pin: raw.pin.map(str::to_owned),
        })
    }
}

/// The access token is checked first (no token is a 401, whatever the
/// body), in the same read as the credentials, the PIN's lock and the nonce.
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<Linked> {
    let nonce_item = req.as_ref().ok().map(|r| nonce_key(&r.nonce));
    let (p, found) = authenticate(app, token, |uid| {
        let mut keys = vec![cred_key(uid), lock_key(LOCK_PIN, uid)];
        keys.extend(nonce_item.clone());
        keys
    })
    .await?;
    let req = req?;
    let provider = req.provider;
    enabled(app, provider)?;
    let mut found = found.into_iter();
    let creds: Credentials = found.next().flatten().map(from_item).transpose()?.unwrap_or_default();
    let lock_item = found.next().flatten();
    let issued = found.next().flatten();
    // The fresh proof: a recent code, or the PIN.
    if !fresh_otp(app, &p) {
        let (Some(pin), Some(hash)) = (req.pin.as_deref(), creds.pin_hash) else {
            return Err(Error::FactorRequired(
                "Linking an account needs a code proved in the last minutes, or your PIN",
            ));
        };
        let lock = Lockout::pin(app, &p.user.id);
        let pin = SecretString::from(pin.to_owned());
        check_in_slot(app, &lock, lock_item, &pin, &hash).await?;
    }
    let ours = issued.as_ref().and_then(owner).is_some_and(|u| u == p.user.id);
    if !ours {
        info!(user = %p.user.id, "link with a nonce this service did not issue to the caller");
        return Err(Error::invalid_flow_token("Invalid or expired idToken"));
    }
    let identity = check_id_token(app, provider, &req.id_token, &req.nonce).await?;
    let now = app.now();
    let (flag, sub_attr) = attrs(provider);
    match linked(provider, &p.user) {
        Some(s) if s == identity.sub => {}
        Some(_) => {
            return Err(Error::Conflict(
                "Another account of this provider is linked; unlink it first",
            ));
        }
        None => {}
    }
    let mut tx = Tx::new();
    // The nonce, once.
    tx.add_or(
        Write::Delete {
            key: nonce_key(&req.nonce),
            cond: Some(Cond::eq("user_id", p.user.id.as_str()).and(Cond::gt(EXPIRES_AT, now))),
        },
        || Error::invalid_flow_token("Invalid or expired idToken"),
    )
    .add_or(
        Write::Put {
            item: to_item(&oauth_key(provider.as_str(), &identity.sub), &owner_item(&p.user.id))?,
            cond: Some(Cond::absent_at(now).or(Cond::eq("user_id", p.user.id.as_str()))),
        },
        || Error::Conflict("This account of the provider is linked to another user"),
    )
    .add_or(
        Write::Update {
            key: user_key(&p.user.id),
            ops: vec![Update::set(flag, true), Update::set(sub_attr, identity.sub.as_str())],
            cond: Some(
                Cond::Exists.and(Cond::AttrNotExists(sub_attr.into()).or(Cond::eq(sub_attr, identity.sub.as_str()))),
            ),
        },
        || Error::Conflict("Another account of this provider is linked; unlink it first"),
    );
    app.db.commit(tx).await.map_err(Error::from)?;
    let mut user = p.user;
    match provider {
        Provider::Google => user.google = true,
        Provider::Apple => user.apple = true,
    }
    info!(user = %user.id, provider = provider.as_str(), "provider linked");
    Ok(Linked {
        provider,
        linked: true,
        auth_methods: AuthMethods::of(&user),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_fresh_session_links_with_an_issued_nonce_once() {
        let (t, _) = testing::app_with_fake_providers();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        let linked = testing::link_google(&t.app, &tokens.access_token, "g-1").await.unwrap();
        assert!(linked.auth_methods.google);
    }

    #[tokio::test]
    async fn a_nonce_the_service_did_not_issue_is_refused() {
        let (t, _) = testing::app_with_fake_providers();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        let raw = Raw {
            provider: Some("GOOGLE"),
            id_token: Some("good:g-1"),
            nonce: Some("made-up"),
            pin: None,
        };
        let e = run(&t.app, Some(&tokens.access_token), Request::parse(raw)).await;
        assert_eq!(e.err().map(|e| e.code()), Some("INVALID_TOKEN"));
    }

    #[tokio::test]
    async fn a_stale_session_needs_the_pin() {
        let (t, _) = testing::app_with_fake_providers();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        t.clock.advance(t.app.settings.fresh_auth + 1);
        let e = testing::link_google(&t.app, &tokens.access_token, "g-1").await;
        assert_eq!(e.err().map(|e| e.code()), Some("FACTOR_REQUIRED"));
    }
}
