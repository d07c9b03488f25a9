//! Google and Apple as optional credentials (docs/SECURITY.md, "Google and
//! Apple"). The idToken check itself (signature against the provider's
//! JWKS, `iss`, `aud`, `exp`, `nonce`) sits behind the
//! [`IdTokenVerifier`] port; here the rules shared by linking and signing
//! in:
//!
//! - a provider subject belongs to at most one user (its `OAUTH#` item), and
//!   a sign-in must present the subject that was linked;
//! - every idToken carries a nonce the service issued, used once: for a
//!   sign-in the checkToken's (`/auth/check` returns it as `oauthNonce`),
//!   for a link one from `POST /account/oauth/nonce`, consumed by the link —
//!   so an idToken can never be replayed.

use std::sync::Arc;

use serde::Serialize;
use tracing::info;

use crate::App;
use crate::base::error::{Error, Result};
use crate::base::values::Provider;
use crate::model::records::User;
use crate::ports::id_tokens::{IdTokenClaims, IdTokenError, IdTokenVerifier};
use crate::services::profile::AuthMethods;

/// How long a link nonce lives.
pub const NONCE_TTL: i64 = 600;

/// The subject of `provider` linked on `user`, if any.
pub fn linked(provider: Provider, user: &User) -> Option<&str> {
    match provider {
        Provider::Google => user.google_sub.as_deref(),
        Provider::Apple => user.apple_sub.as_deref(),
    }
}

/// The user attributes of `provider`: its flag and its subject.
pub fn attrs(provider: Provider) -> (&'static str, &'static str) {
    match provider {
        Provider::Google => ("google", "google_sub"),
        Provider::Apple => ("apple", "apple_sub"),
    }
}

/// `FEATURE_DISABLED` unless `provider` is configured.
pub fn enabled(app: &App, provider: Provider) -> Result<&Arc<dyn IdTokenVerifier>> {
    let configured = match provider {
        Provider::Google => !app.settings.oauth.google_client_ids.is_empty(),
        Provider::Apple => !app.settings.oauth.apple_client_ids.is_empty(),
    };
    match app.oauth()? {
        Some(v) if configured => Ok(v),
        _ => Err(Error::FeatureDisabled(provider.setting())),
    }
}

/// Checks `id_token`, mapping failures to the API's errors.
pub async fn check_id_token(app: &App, provider: Provider, id_token: &str, nonce: &str) -> Result<IdTokenClaims> {
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
