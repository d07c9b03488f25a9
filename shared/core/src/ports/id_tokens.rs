//! The idToken port: checks a Google or Apple idToken against the
//! provider's published keys. `nambari-oauth` implements it over HTTPS.

use async_trait::async_trait;

use crate::base::values::Provider;

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
