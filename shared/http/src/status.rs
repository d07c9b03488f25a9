//! The HTTP status of each domain error (docs/API.md §9): the domain names
//! what went wrong, the edge decides how HTTP says it.

use nambari_core::Error;
use nambari_core::base::error::TokenClass;

/// The HTTP status `e` is answered with.
pub fn status_of(e: &Error) -> u16 {
    match e {
        Error::InvalidJson
        | Error::ChannelNotAllowed(_)
        | Error::ResendCooldown { .. }
        | Error::TooManyResends
        | Error::NoVerifiedEmail
        | Error::PasswordMismatch => 400,
        Error::Unauthorized | Error::TokenReused => 401,
        Error::InvalidToken { of, .. } => match of {
            TokenClass::Session => 401,
            TokenClass::Flow => 403,
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_documented_status() {
        assert_eq!(status_of(&Error::InvalidJson), 400);
        assert_eq!(status_of(&Error::field("identifier", "bad")), 422);
        assert_eq!(status_of(&Error::invalid_flow_token("x")), 403);
        assert_eq!(status_of(&Error::invalid_session_token("x")), 401);
        assert_eq!(status_of(&Error::TokenReused), 401);
        assert_eq!(status_of(&Error::RateLimited { retry_after: 3 }), 429);
        assert_eq!(status_of(&Error::DeliveryFailed), 502);
        assert_eq!(status_of(&Error::internal("boom")), 500);
        assert_eq!(status_of(&Error::FeatureDisabled("INVITE_URL_TEMPLATE")), 503);
        assert_eq!(status_of(&Error::FactorRequired("x")), 403);
    }
}
