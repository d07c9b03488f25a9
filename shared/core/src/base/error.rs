//! The one error type of the domain, with a stable machine `code()`
//! (docs/API.md §9 lists them; the HTTP edge maps each to its status).
//! Adapters keep their cause as a source; the cause is logged, never
//! returned to a client.

use std::collections::BTreeMap;

/// A field → message map for 422 responses.
pub type FieldErrors = BTreeMap<String, String>;

/// Which kind of token an `INVALID_TOKEN` is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenClass {
    /// A step of a flow (checkToken, tempToken, onboardingToken, …).
    Flow,
    /// A session's access or refresh token.
    Session,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("The request body is not valid JSON")]
    InvalidJson,
    #[error("The request has invalid fields")]
    Validation(FieldErrors),
    #[error("The request body is too large")]
    PayloadTooLarge,
    /// An invalid or expired token: a flow token (checkToken, tempToken,
    /// …) or a session's (access or refresh token).
    #[error("{message}")]
    InvalidToken { of: TokenClass, message: &'static str },
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
        Error::InvalidToken {
            of: TokenClass::Flow,
            message,
        }
    }

    /// An access or refresh token that is invalid or expired: 401.
    pub fn invalid_session_token(message: &'static str) -> Self {
        Error::InvalidToken {
            of: TokenClass::Session,
            message,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

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
