//! Google and Apple as optional credentials: link a provider to the
//! signed-in account, unlink it, and sign in with it (SPEC §6).
//!
//! The idToken check itself (signature against the provider's JWKS, `iss`,
//! `aud`, `exp`, `nonce`) sits behind the [`IdTokenVerifier`] port; the
//! `nambari-oauth` crate implements it over HTTPS. Here the rules: a
//! provider subject belongs to at most one user (its `OAUTH#` item), and a
//! sign-in must present the subject that was linked.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use crate::App;
use crate::account::{AuthMethods, signed_in};
use crate::auth::{
    CheckBody, DeviceInfo, Tokens, all_fields, blocked_until, field, parse_device_extras, required, session_writes,
    verify_check,
};
use crate::error::{Error, Result};
use crate::repo::{User, from_item, jti_key, oauth_key, to_item, user_key};
use crate::table::{Cond, EXPIRES_AT, Item, Update, Write};
use crate::tokens::Claims;

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
    async fn verify(
        &self,
        provider: Provider,
        id_token: &str,
        nonce: Option<&str>,
        now: i64,
    ) -> std::result::Result<IdTokenClaims, IdTokenError>;
}

/// Checks `id_token`, mapping failures to the API's errors.
async fn check_id_token(app: &App, provider: Provider, id_token: &str, nonce: Option<&str>) -> Result<IdTokenClaims> {
    let verifier = app
        .oauth
        .as_ref()
        .ok_or_else(|| Error::field("provider", "is not enabled on this deployment"))?;
    if id_token.len() > 8192 {
        return Err(Error::invalid_flow_token("Invalid or expired idToken"));
    }
    match verifier.verify(provider, id_token, nonce, app.now()).await {
        Ok(c) => Ok(c),
        Err(IdTokenError::Invalid(why)) => {
            info!(provider = provider.as_str(), why, "idToken refused");
            Err(Error::invalid_flow_token("Invalid or expired idToken"))
        }
        Err(IdTokenError::NotConfigured) => Err(Error::field("provider", "is not enabled on this deployment")),
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

/// `POST /account/oauth/link`: links the idToken's subject to the caller.
/// 409 when it is linked to another user, or another subject of the same
/// provider is linked here.
pub async fn link(
    app: &App,
    token: Option<&str>,
    provider: Option<&str>,
    id_token: Option<&str>,
    nonce: Option<&str>,
) -> Result<Linked> {
    let (mut prov, mut idt) = (None, None);
    let parsed = all_fields([
        field(
            &mut prov,
            required(provider, "provider").and_then(|p| Provider::parse(p, "provider")),
        ),
        field(&mut idt, required(id_token, "idToken")),
    ]);
    let p = signed_in(app, token).await?;
    parsed?;
    let (Some(provider), Some(id_token)) = (prov, idt) else {
        return Err(Error::internal("parsed fields missing"));
    };
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
            Error::Conflict("This account of the provider is linked to another user")
        } else if e.failed_at(1) {
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
    let p = signed_in(app, token).await?;
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
    pub nonce: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
}

/// `POST /auth/login/oauth`: signs in with a linked provider. Consumes
/// the checkToken.
pub async fn login(app: &App, input: OAuthLoginInput<'_>) -> Result<(User, Tokens)> {
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
    let claims: Claims<CheckBody> = claims;
    let Some(uid) = claims.body.uid.clone() else {
        return Err(Error::OauthNotLinked);
    };
    let found = app.db.batch_get(&[jti_key(&claims.jti), user_key(&uid)], now).await?;
    let mut it = found.into_iter();
    if it.next().flatten().is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let user: User = it
        .next()
        .flatten()
        .map(from_item)
        .transpose()?
        .ok_or(Error::OauthNotLinked)?;
    let Some(linked) = provider.linked(&user).map(str::to_owned) else {
        return Err(Error::OauthNotLinked);
    };
    let identity = check_id_token(app, provider, id_token, input.nonce).await?;
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
    let mut used = Item::new();
    used.insert(EXPIRES_AT.into(), Value::from(claims.exp));
    let (writes, tokens) = session_writes(app, &user, &device, vec![provider.amr().to_owned()], now)?;
    let mut all = vec![Write::Put {
        item: to_item(&jti_key(&claims.jti), &used)?,
        cond: Some(Cond::absent_at(now)),
    }];
    all.extend(writes);
    app.db.transact(all).await.map_err(crate::auth::consumed_err)?;
    info!(user = %user.id, provider = provider.as_str(), sid = %tokens.session.sid, "signed in with a provider");
    Ok((user, tokens))
}
