//! The bodies of the JWTs the service issues (their `typ`, lifetime and
//! signing are [`crate::base::tokens`]; docs/DESIGN.md §3 lists them).

use serde::{Deserialize, Serialize};

use crate::base::ids::{SessionId, UserId};
use crate::base::values::Platform;
use crate::model::records::OnboardingFlags;

/// Claims of a checkToken: bound to the phone and the device.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckBody {
    pub phone: String,
    pub ctry: String,
    pub did: String,
    #[serde(default)]
    pub uid: Option<UserId>,
    /// The nonce a Google or Apple idToken must carry to sign in with this
    /// checkToken (single use with it).
    #[serde(default)]
    pub non: Option<String>,
}

/// Claims of a tempToken (its `jti` is the OTP session id).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TempBody {
    pub phone: String,
    pub purpose: String,
    /// The user, when one existed at the check (read with the session).
    #[serde(default)]
    pub uid: Option<UserId>,
}

/// Claims of an onboardingToken (`sub` is the user id).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OnboardingBody {
    pub phone: String,
    pub did: String,
    pub amr: Vec<String>,
    #[serde(default)]
    pub dname: Option<String>,
    #[serde(default)]
    pub plt: Option<Platform>,
}

/// Claims of an access token (`sub` is the user id).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessBody {
    pub phone: String,
    pub ctry: String,
    pub tier: Tier,
    pub sid: SessionId,
    pub amr: Vec<String>,
    pub onb: OnboardingFlags,
    /// When the user last proved the phone or the password (OIDC `auth_time`).
    #[serde(default)]
    pub auth_time: i64,
}

/// Claims of a stepUpToken (`sub` is the user id): what the PIN allowed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepUpBody {
    pub scope: String,
    /// The session the PIN was entered in.
    pub sid: SessionId,
}

/// Claims of a resetToken (`sub` is the user id).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResetBody {
    pub phone: String,
    /// The device the reset started on: it gets the new session.
    pub did: String,
}

/// Claims of a deviceVerificationToken (its `jti` is the OTP session id).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceVerificationBody {
    pub phone: String,
    pub uid: UserId,
    #[serde(default)]
    pub dname: Option<String>,
    #[serde(default)]
    pub plt: Option<Platform>,
    /// The `amr` of the factor the code completes (`pwd` when absent).
    #[serde(default)]
    pub first: Option<String>,
}

/// Account tiers from the birthdate (docs/DESIGN.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tier {
    Full,
    Restricted,
    Minor,
}

/// Claims of a recoveryToken (`sub` is the user id): the two code
/// sessions it completes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryBody {
    pub email_sid: String,
    pub phone_sid: String,
}
