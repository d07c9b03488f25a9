//! The one error type of the domain, with a stable machine `code()` and the
//! HTTP status it maps to (SPEC §7). Adapters keep their cause as a source;
//! the cause is logged, never returned to a client.

use std::collections::BTreeMap;

use crate::table::TableError;

/// A field → message map for 422 responses.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("The request body is not valid JSON")]
    InvalidJson,
    #[error("The request has invalid fields")]
    Validation(FieldErrors),
    #[error("The request body is too large")]
    PayloadTooLarge,
    /// An invalid or expired token. `status` is 403 for flow tokens and 401
    /// for access and refresh tokens.
    #[error("{message}")]
    InvalidToken { status: u16, message: &'static str },
    #[error("This token has already been used")]
    TokenAlreadyUsed,
    #[error("The deviceId does not match the one the token was issued to")]
    DeviceMismatch,
    #[error("{0}")]
    ChannelNotAllowed(&'static str),
    #[error("Invalid code. {remaining} attempt(s) left")]
    InvalidOtp { remaining: u32 },
    #[error("The code has expired. Request a new one")]
    OtpExpired,
    #[error("Too many wrong codes. Start again")]
    TooManyOtpAttempts,
    #[error("Please wait {retry_after} seconds before requesting a new code")]
    ResendCooldown { retry_after: u64 },
    #[error("Too many codes requested for this session. Start again")]
    TooManyResends,
    #[error("Too many requests. Try again in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    #[error("Primary onboarding is already complete")]
    OnboardingAlreadyComplete,
    #[error("Invalid credentials")]
    InvalidCredentials,
    #[error("Too many failed attempts. Try again later")]
    AccountLocked { retry_after: u64 },
    /// The account is blocked (by an operator); it cannot sign in.
    #[error("This account is blocked")]
    AccountBlocked,
    #[error("No password is set on this account")]
    PasswordNotSet,
    #[error("No PIN is set on this account")]
    PinNotSet,
    #[error("This provider is not linked to the account")]
    OauthNotLinked,
    #[error("The account has no verified email")]
    NoVerifiedEmail,
    #[error("The passwords do not match")]
    PasswordMismatch,
    #[error("Authentication required")]
    Unauthorized,
    /// The API key lacks the scope this route needs.
    #[error("This API key may not call this route (scope {0})")]
    InsufficientScope(&'static str),
    #[error("This refresh token was already used; the session has been revoked")]
    TokenReused,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("The message could not be delivered")]
    DeliveryFailed,
    /// The route exists, with another method (local mode; API Gateway
    /// answers this itself when deployed).
    #[error("This route does not accept this method")]
    MethodNotAllowed,
    /// A feature this deployment has switched off (503); names the setting
    /// that switches it on.
    #[error("This feature is off on this deployment; it needs the setting {0}")]
    FeatureDisabled(&'static str),
    /// A sensitive change without the proof it needs (a fresh code, the
    /// current PIN or password, …): 403.
    #[error("{0}")]
    FactorRequired(&'static str),
    /// The store is throttled or unreachable (503); the cause is kept.
    #[error("The service is temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything unexpected (500); the cause is kept for the log.
    #[error("Internal error")]
    Internal(String),
}

impl Error {
    /// The stable machine code of SPEC §7.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidJson => "INVALID_JSON",
            Error::Validation(_) => "VALIDATION_ERROR",
            Error::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Error::InvalidToken { .. } => "INVALID_TOKEN",
            Error::TokenAlreadyUsed => "TOKEN_ALREADY_USED",
            Error::DeviceMismatch => "DEVICE_MISMATCH",
            Error::ChannelNotAllowed(_) => "CHANNEL_NOT_ALLOWED",
            Error::InvalidOtp { .. } => "INVALID_OTP",
            Error::OtpExpired => "OTP_EXPIRED",
            Error::TooManyOtpAttempts => "TOO_MANY_OTP_ATTEMPTS",
            Error::ResendCooldown { .. } => "RESEND_COOLDOWN",
            Error::TooManyResends => "TOO_MANY_RESENDS",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::OnboardingAlreadyComplete => "ONBOARDING_ALREADY_COMPLETE",
            Error::InvalidCredentials => "INVALID_CREDENTIALS",
            Error::AccountLocked { .. } => "ACCOUNT_LOCKED",
            Error::AccountBlocked => "ACCOUNT_BLOCKED",
            Error::PasswordNotSet => "PASSWORD_NOT_SET",
            Error::PinNotSet => "PIN_NOT_SET",
            Error::OauthNotLinked => "OAUTH_NOT_LINKED",
            Error::NoVerifiedEmail => "NO_VERIFIED_EMAIL",
            Error::PasswordMismatch => "PASSWORD_MISMATCH",
            Error::Unauthorized => "UNAUTHORIZED",
            Error::InsufficientScope(_) => "INSUFFICIENT_SCOPE",
            Error::TokenReused => "TOKEN_REUSED",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Conflict(_) => "CONFLICT",
            Error::DeliveryFailed => "DELIVERY_FAILED",
            Error::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Error::FeatureDisabled(_) => "FEATURE_DISABLED",
            Error::FactorRequired(_) => "FACTOR_REQUIRED",
            Error::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The HTTP status of SPEC §7.
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidJson
            | Error::ChannelNotAllowed(_)
            | Error::ResendCooldown { .. }
            | Error::TooManyResends
            | Error::NoVerifiedEmail
            | Error::PasswordMismatch => 400,
            Error::Unauthorized | Error::TokenReused => 401,
            Error::InvalidToken { status, .. } => *status,
            Error::TokenAlreadyUsed
            | Error::DeviceMismatch
            | Error::InvalidOtp { .. }
            | Error::OtpExpired
            | Error::TooManyOtpAttempts
            | Error::OnboardingAlreadyComplete
            | Error::InvalidCredentials
            | Error::AccountLocked { .. }
            | Error::AccountBlocked
            | Error::PasswordNotSet
            | Error::PinNotSet
            | Error::InsufficientScope(_)
            | Error::FactorRequired(_)
            | Error::OauthNotLinked => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed => 405,
            Error::Conflict(_) => 409,
            Error::PayloadTooLarge => 413,
            Error::Validation(_) => 422,
            Error::RateLimited { .. } => 429,
            Error::Internal(_) => 500,
            Error::DeliveryFailed => 502,
            Error::Unavailable(_) | Error::FeatureDisabled(_) => 503,
        }
    }

    /// Seconds after which a retry may succeed (429 `retryAfter`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// A 422 with one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut m = FieldErrors::new();
        m.insert(field.to_owned(), message.into());
        Error::Validation(m)
    }

    /// A flow token (checkToken, tempToken, …) that is invalid or expired: 403.
    pub fn invalid_flow_token(message: &'static str) -> Self {
        Error::InvalidToken { status: 403, message }
    }

    /// An access or refresh token that is invalid or expired: 401.
    pub fn invalid_session_token(message: &'static str) -> Self {
        Error::InvalidToken { status: 401, message }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
}

impl From<TableError> for Error {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Unavailable(source) => Error::Unavailable(source),
            // A conflict that outlived its retries: busy, try again (503).
            TableError::TransactionCanceled(v) if !v.iter().any(|f| *f) => {
                Error::Unavailable("transaction conflict with a concurrent request".into())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_the_status_of_the_spec() {
        assert_eq!(Error::InvalidJson.status(), 400);
        assert_eq!(Error::field("identifier", "bad").status(), 422);
        assert_eq!(Error::invalid_flow_token("x").status(), 403);
        assert_eq!(Error::invalid_session_token("x").status(), 401);
        assert_eq!(Error::TokenReused.status(), 401);
        assert_eq!(Error::RateLimited { retry_after: 3 }.status(), 429);
        assert_eq!(Error::DeliveryFailed.status(), 502);
        assert_eq!(Error::internal("boom").status(), 500);
        assert_eq!(Error::FeatureDisabled("INVITE_URL_TEMPLATE").status(), 503);
        assert_eq!(Error::FactorRequired("x").status(), 403);
    }

    #[test]
    fn a_disabled_feature_names_the_setting_that_turns_it_on() {
        let e = Error::FeatureDisabled("INVITE_URL_TEMPLATE");
        assert_eq!(e.code(), "FEATURE_DISABLED");
        assert!(e.to_string().contains("INVITE_URL_TEMPLATE"));
    }

    #[test]
    fn internal_error_messages_do_not_carry_their_cause() {
        let e = Error::internal("secret detail");
        assert_eq!(e.to_string(), "Internal error");
    }
}
