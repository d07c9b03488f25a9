//! Google and Apple as optional credentials: link a provider to the
//! signed-in account, unlink it, and sign in with it.
//!
//! The idToken check itself (signature against the provider's JWKS, `iss`,
//! `aud`, `exp`, `nonce`) sits behind the [`IdTokenVerifier`] port; the
//! `nambari-oauth` crate implements it over HTTPS. Here the rules:
//!
//! - a provider subject belongs to at most one user (its `OAUTH#` item), and
//!   a sign-in must present the subject that was linked;
//! - every idToken carries a nonce the service issued, used once: for a
//!   sign-in the checkToken's (`/auth/check` returns it as `oauthNonce`),
//!   for a link one from `POST /account/oauth/nonce`, consumed by the link —
//!   so an idToken can never be replayed;
//! - linking needs a fresh proof (a code within `FRESH_AUTH_SECONDS`, or
//!   the PIN), so a stolen access token cannot add the thief's account;
//! - a sign-in on a device the account does not know (no deviceToken)
//!   needs a code to the phone as well, as a password sign-in does.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use crate::App;
use crate::account::{AuthMethods, authenticate};
use crate::auth::{
    CheckBody, DeviceInfo, all_fields, blocked_until, device_proven, field, parse_device_extras, required,
    session_writes, verify_check,
};
use crate::credentials::{LOCK_PIN, Lockout, fresh_otp, verify_secret};
use crate::error::{Error, Result};
use crate::password::{DeviceCheck, SignIn, device_check, use_jti};
use crate::repo::{
    Credentials, User, cred_key, device_key, from_item, jti_key, lock_key, nonce_key, oauth_key, to_item, user_key,
};
use crate::table::{Cond, EXPIRES_AT, Item, Update, Write};
use crate::tokens::Claims;

/// How long a link nonce lives.
pub const NONCE_TTL: i64 = 600;

/// An OAuth provider whose idTokens Nambari accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Provider {
    Google,
    Apple,
}

impl Provider {
    /// `GOOGLE` or `APPLE` (case-insensitive: path segments are often lowercase).
    pub fn parse(s: &str, field: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "GOOGLE" => Ok(Provider::Google),
            "APPLE" => Ok(Provider::Apple),
            _ => Err(Error::field(field, "must be GOOGLE or APPLE")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "GOOGLE",
            Provider::Apple => "APPLE",
        }
    }

    /// The `amr` of a sign-in with this provider.
    pub fn amr(self) -> &'static str {
        match self {
            Provider::Google => "oauth_google",
            Provider::Apple => "oauth_apple",
        }
    }

    /// The subject linked on `user`, if any.
    pub fn linked(self, user: &User) -> Option<&str> {
        match self {
            Provider::Google => user.google_sub.as_deref(),
            Provider::Apple => user.apple_sub.as_deref(),
        }
    }

    /// The setting that turns the provider on.
    pub fn setting(self) -> &'static str {
        match self {
            Provider::Google => "GOOGLE_CLIENT_IDS",
            Provider::Apple => "APPLE_CLIENT_IDS",
        }
    }

    fn attrs(self) -> (&'static str, &'static str) {
        match self {
            Provider::Google => ("google", "google_sub"),
            Provider::Apple => ("apple", "apple_sub"),
        }
    }
}

/// What a checked idToken says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdTokenClaims {
    /// The provider's stable user id.
    pub sub: String,
    pub email: Option<String>,
}

/// Why an idToken was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// Bad signature, issuer, audience, nonce, or expired: the reason is
    /// for the log only.
    #[error("invalid idToken: {0}")]
    Invalid(&'static str),
    /// The provider is not configured on this deployment.
    #[error("provider not configured")]
    NotConfigured,
    /// The provider's keys could not be fetched.
    #[error("provider keys unavailable: {0}")]
    Unavailable(String),
}

/// Checks idTokens against the provider's published keys.
#[async_trait]
pub trait IdTokenVerifier: Send + Sync {
    /// `nonce` is the one the service issued: the idToken must carry it
    /// (Apple's may carry its SHA-256 in hex, as Apple's SDKs send it).
    async fn verify(
        &self,
        provider: Provider,
        id_token: &str,
        nonce: &str,
        now: i64,
    ) -> std::result::Result<IdTokenClaims, IdTokenError>;
}

/// `FEATURE_DISABLED` unless `provider` is configured.
fn enabled(app: &App, provider: Provider) -> Result<&std::sync::Arc<dyn IdTokenVerifier>> {
    let configured = match provider {
        Provider::Google => !app.settings.oauth.google_client_ids.is_empty(),
        Provider::Apple => !app.settings.oauth.apple_client_ids.is_empty(),
    };
    match &app.oauth {
        Some(v) if configured => Ok(v),
        _ => Err(Error::FeatureDisabled(provider.setting())),
    }
}

/// Checks `id_token`, mapping failures to the API's errors.
async fn check_id_token(app: &App, provider: Provider, id_token: &str, nonce: &str) -> Result<IdTokenClaims> {
    let verifier = enabled(app, provider)?;
    if id_token.len() > 8192 {
        return Err(Error::invalid_flow_token("Invalid or expired idToken"));
    }
    match verifier.verify(provider, id_token, nonce, app.now()).await {
        Ok(c) => Ok(c),
        Err(IdTokenError::Invalid(why)) => {
            info!(provider = provider.as_str(), why, "idToken refused");
            Err(Error::invalid_flow_token("Invalid or expired idToken"))
        }
        Err(IdTokenError::NotConfigured) => Err(Error::FeatureDisabled(provider.setting())),
        Err(IdTokenError::Unavailable(why)) => Err(Error::Unavailable(why.into())),
    }
}

/// What link and unlink return.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Linked {
    pub provider: Provider,
    pub linked: bool,
    pub auth_methods: AuthMethods,
}

/// A nonce to put in the idToken of a link.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Nonce {
    pub nonce: String,
    pub expires_in: i64,
}

/// `POST /account/oauth/nonce`: a single-use nonce (10 minutes) for the
/// caller's next link; the app passes it to the provider's sign-in SDK.
pub async fn nonce(app: &App, token: Option<&str>) -> Result<Nonce> {
    let p = crate::account::signed_in(app, token).await?;
    if !app.settings.oauth.any() || app.oauth.is_none() {
        return Err(Error::FeatureDisabled(Provider::Google.setting()));
    }
    let now = app.now();
    let nonce = crate::ids::random_base62()?;
    let mut item = Item::new();
    item.insert("user_id".into(), Value::String(p.user.id.to_string()));
    item.insert(EXPIRES_AT.into(), Value::from(now + NONCE_TTL));
    app.db
        .put(to_item(&nonce_key(&nonce), &item)?, Some(Cond::NotExists))
        .await
        .map_err(Error::from)?;
    Ok(Nonce {
        nonce,
        expires_in: NONCE_TTL,
    })
}

/// A link request.
pub struct LinkInput<'a> {
    pub provider: Option<&'a str>,
    pub id_token: Option<&'a str>,
    /// The nonce from `POST /account/oauth/nonce` that the idToken carries.
    pub nonce: Option<&'a str>,
    /// The PIN, as the fresh proof when the session's code is not fresh.
    pub pin: Option<&'a str>,
}

/// `POST /account/oauth/link`: links the idToken's subject to the caller.
/// Needs a fresh proof (a code within `FRESH_AUTH_SECONDS`, or `pin`) and
/// an idToken carrying a nonce the service issued to the caller, which the
/// link consumes. 409 when the subject is linked to another user, or
/// another subject of the same provider is linked here.
pub async fn link(app: &App, token: Option<&str>, input: LinkInput<'_>) -> Result<Linked> {
    let (mut prov, mut idt, mut non) = (None, None, None);
    let parsed = all_fields([
        field(
            &mut prov,
            required(input.provider, "provider").and_then(|p| Provider::parse(p, "provider")),
        ),
        field(&mut idt, required(input.id_token, "idToken")),
        field(
            &mut non,
            required(input.nonce, "nonce").and_then(|n| {
                if n.len() <= 64 {
                    Ok(n)
                } else {
                    Err(Error::field("nonce", "is not a nonce this service issued"))
                }
            }),
        ),
    ]);
    let nonce_item = input.nonce.filter(|n| n.len() <= 64).map(nonce_key);
    let (p, found) = authenticate(app, token, |uid| {
        let mut keys = vec![cred_key(uid), lock_key(LOCK_PIN, uid)];
        keys.extend(nonce_item.clone());
        keys
    })
    .await?;
    parsed?;
    let (Some(provider), Some(id_token), Some(nonce)) = (prov, idt, non) else {
        return Err(Error::internal("parsed fields missing"));
    };
    enabled(app, provider)?;
    let mut found = found.into_iter();
    let creds: Credentials = found.next().flatten().map(from_item).transpose()?.unwrap_or_default();
    let lock_item = found.next().flatten();
    let issued = found.next().flatten();
    // The fresh proof: a recent code, or the PIN.
    if !fresh_otp(app, &p) {
        let (Some(pin), Some(hash)) = (input.pin, creds.pin_hash) else {
            return Err(Error::FactorRequired(
                "Linking an account needs a code proved in the last minutes, or your PIN",
            ));
        };
        let lock = Lockout::pin(app, &p.user.id);
        let slot = lock.take(app, lock_item).await?;
        let pin = secrecy::SecretString::from(pin.to_owned());
        if !verify_secret(app, &pin, Some(&hash)).await? {
            return Err(lock.fail(app, &slot).await);
        }
        lock.still_held(app, &slot)?;
    }
    let ours = issued
        .as_ref()
        .and_then(|i| i.get("user_id"))
        .and_then(Value::as_str)
        .is_some_and(|u| u == p.user.id.as_str());
    if !ours {
        info!(user = %p.user.id, "link with a nonce this service did not issue to the caller");
        return Err(Error::invalid_flow_token("Invalid or expired idToken"));
    }
    let identity = check_id_token(app, provider, id_token, nonce).await?;
    let now = app.now();
    let (flag, sub_attr) = provider.attrs();
    match provider.linked(&p.user) {
        Some(s) if s == identity.sub => {}
        Some(_) => {
            return Err(Error::Conflict(
                "Another account of this provider is linked; unlink it first",
            ));
        }
        None => {}
    }
    let mut owner = Item::new();
    owner.insert("user_id".into(), Value::String(p.user.id.to_string()));
    let writes = vec![
        // The nonce, once.
        Write::Delete {
            key: nonce_key(nonce),
            cond: Some(Cond::eq("user_id", p.user.id.as_str()).and(Cond::gt(EXPIRES_AT, now))),
        },
        Write::Put {
            item: to_item(&oauth_key(provider.as_str(), &identity.sub), &owner)?,
            cond: Some(Cond::absent_at(now).or(Cond::eq("user_id", p.user.id.as_str()))),
        },
        Write::Update {
            key: user_key(&p.user.id),
            ops: vec![Update::set(flag, true), Update::set(sub_attr, identity.sub.as_str())],
            cond: Some(
                Cond::Exists.and(Cond::AttrNotExists(sub_attr.into()).or(Cond::eq(sub_attr, identity.sub.as_str()))),
            ),
        },
    ];
    app.db.transact(writes).await.map_err(|e| {
        if e.failed_at(0) {
            Error::invalid_flow_token("Invalid or expired idToken")
        } else if e.failed_at(1) {
            Error::Conflict("This account of the provider is linked to another user")
        } else if e.failed_at(2) {
            Error::Conflict("Another account of this provider is linked; unlink it first")
        } else {
            Error::from(e)
        }
    })?;
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

/// `DELETE /account/oauth/{provider}`.
pub async fn unlink(app: &App, token: Option<&str>, provider: Option<&str>) -> Result<Linked> {
    let provider = Provider::parse(provider.unwrap_or(""), "provider");
    let p = crate::account::signed_in(app, token).await?;
    let provider = provider?;
    let Some(sub) = provider.linked(&p.user).map(str::to_owned) else {
        return Err(Error::OauthNotLinked);
    };
    let (flag, sub_attr) = provider.attrs();
    let writes = vec![
        Write::Delete {
            key: oauth_key(provider.as_str(), &sub),
            cond: None,
        },
        Write::Update {
            key: user_key(&p.user.id),
            ops: vec![Update::set(flag, false), Update::remove(sub_attr)],
            cond: Some(Cond::eq(sub_attr, sub.as_str())),
        },
    ];
    app.db.transact(writes).await.map_err(|e| {
        if e.failed_at(1) {
            Error::OauthNotLinked
        } else {
            Error::from(e)
        }
    })?;
    let mut user = p.user;
    match provider {
        Provider::Google => user.google = false,
        Provider::Apple => user.apple = false,
    }
    info!(user = %user.id, provider = provider.as_str(), "provider unlinked");
    Ok(Linked {
        provider,
        linked: false,
        auth_methods: AuthMethods::of(&user),
    })
}

pub struct OAuthLoginInput<'a> {
    pub check_token: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub id_token: Option<&'a str>,
    pub device_id: Option<&'a str>,
    /// The device's proof that it is known (body `deviceToken`, or the web cookie).
    pub device_token: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub locale: String,
    pub ip: Option<&'a str>,
}

/// `POST /auth/login/oauth`: signs in with a linked provider. Consumes
/// the checkToken, whose nonce the idToken must carry. On a device the
/// account does not know, answers `VERIFY_DEVICE` and sends a code.
pub async fn login(app: &App, input: OAuthLoginInput<'_>) -> Result<SignIn> {
    let now = app.now();
    let (mut claims, mut prov, mut idt, mut extras) = (None, None, None, None);
    all_fields([
        field(&mut claims, verify_check(app, input.check_token, input.device_id, now)),
        field(
            &mut prov,
            required(input.provider, "provider").and_then(|p| Provider::parse(p, "provider")),
        ),
        field(&mut idt, required(input.id_token, "idToken")),
        field(&mut extras, parse_device_extras(input.device_name, input.platform)),
    ])?;
    let (Some(claims), Some(provider), Some(id_token), Some((device_name, platform))) = (claims, prov, idt, extras)
    else {
        return Err(Error::internal("parsed fields missing"));
    };
    enabled(app, provider)?;
    let claims: Claims<CheckBody> = claims;
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
    let known_device = device_proven(it.next().flatten(), input.device_token)?;
    let Some(linked) = provider.linked(&user).map(str::to_owned) else {
        return Err(Error::OauthNotLinked);
    };
    let identity = check_id_token(app, provider, id_token, &nonce).await?;
    if !crate::crypto::ct_eq(identity.sub.as_bytes(), linked.as_bytes()) {
        return Err(Error::invalid_flow_token(
            "This idToken is not of the account linked to this user",
        ));
    }
    if user.blocked || blocked_until(app, &user).is_some() {
        return Err(Error::AccountBlocked);
    }
    let device = DeviceInfo {
        device_id: claims.body.did.clone(),
        device_name,
        platform,
    };
    let consume = use_jti(&claims.jti, claims.exp, now)?;
    if !known_device {
        let check = DeviceCheck {
            user: &user,
            device,
            first_factor: provider.amr(),
            locale: input.locale,
            ip: input.ip,
            check_jti: &claims.jti,
        };
        return device_check(app, check, vec![consume]).await;
    }
    let (writes, tokens) = session_writes(app, &user, &device, vec![provider.amr().to_owned()], now)?;
    let mut all = vec![consume];
    all.extend(writes);
    app.db.transact(all).await.map_err(crate::auth::consumed_err)?;
    info!(user = %user.id, provider = provider.as_str(), sid = %tokens.session.sid, "signed in with a provider");
    Ok(SignIn::SignedIn {
        user: Box::new(user),
        tokens: Box::new(tokens),
    })
}
