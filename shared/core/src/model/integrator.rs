//! The records of integrator OTP sessions (docs/DESIGN.md §6): one code
//! per channel, a verified flag per channel, one wrong-code budget for the
//! whole session and a `version` every change is conditioned on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::base::channel::Pipe;
use crate::base::ids::UserId;

/// A channel of the integrator API (lowercase on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IChannel {
    Email,
    Sms,
    Whatsapp,
}

impl IChannel {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(IChannel::Email),
            "sms" => Some(IChannel::Sms),
            "whatsapp" => Some(IChannel::Whatsapp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IChannel::Email => "email",
            IChannel::Sms => "sms",
            IChannel::Whatsapp => "whatsapp",
        }
    }

    pub fn pipe(self) -> Pipe {
        match self {
            IChannel::Email => Pipe::Email,
            IChannel::Sms => Pipe::Sms,
            IChannel::Whatsapp => Pipe::Whatsapp,
        }
    }

    pub fn is_phone(self) -> bool {
        self != IChannel::Email
    }
}

/// Which channels complete a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Strategy {
    /// Every channel of the session.
    All,
    /// Any one channel.
    Any,
    /// These channels.
    Channels(Vec<IChannel>),
}

/// A session's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Partial,
    Verified,
    Expired,
    Failed,
}

impl Status {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PENDING" => Some(Status::Pending),
            "PARTIAL" => Some(Status::Partial),
            "VERIFIED" => Some(Status::Verified),
            "EXPIRED" => Some(Status::Expired),
            "FAILED" => Some(Status::Failed),
            _ => None,
        }
    }

    pub fn terminal(self) -> bool {
        matches!(self, Status::Verified | Status::Failed | Status::Expired)
    }
}

/// One channel of a stored session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChannelState {
    pub recipient: String,
    /// HMAC(pepper, session id ‖ channel ‖ code), hex.
    pub code_hash: String,
    pub verified: bool,
    #[serde(default)]
    pub verified_at: Option<i64>,
    /// Whether the last send reached the channel.
    pub delivered: bool,
}

/// A stored integrator OTP session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OtpSessionRecord {
    pub session_id: String,
    pub key_id: String,
    pub channels: BTreeMap<IChannel, ChannelState>,
    pub strategy: Strategy,
    pub otp_length: u32,
    pub max_attempts: u32,
    pub attempts: u32,
    pub created_at: i64,
    pub code_expires_at: i64,
    /// A code's life in seconds (`expiry_minutes`), restarted by a resend.
    pub ttl: i64,
    pub last_sent_at: i64,
    pub resends: u32,
    pub sandbox: bool,
    pub add_contact: bool,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Stored for the status filter; [`OtpSessionRecord::status`] is the truth.
    pub status: Status,
    #[serde(default)]
    pub user_id: Option<UserId>,
    pub version: u64,
    pub expires_at: i64,
}

impl OtpSessionRecord {
    /// The channels whose verification completes the session.
    pub fn required(&self) -> Vec<IChannel> {
        match &self.strategy {
            Strategy::All => self.channels.keys().copied().collect(),
            Strategy::Any => Vec::new(),
            Strategy::Channels(c) => c.clone(),
        }
    }

    /// The state from the flags, the budget and the clock.
    pub fn status(&self, now: i64) -> Status {
        let verified: Vec<IChannel> = self
            .channels
            .iter()
            .filter(|(_, c)| c.verified)
            .map(|(k, _)| *k)
            .collect();
        let complete = match &self.strategy {
            Strategy::Any => !verified.is_empty(),
            _ => self.required().iter().all(|c| verified.contains(c)),
        };
        if complete {
            Status::Verified
        } else if self.attempts >= self.max_attempts {
            Status::Failed
        } else if now >= self.code_expires_at {
            Status::Expired
        } else if verified.is_empty() {
            Status::Pending
        } else {
            Status::Partial
        }
    }
}
