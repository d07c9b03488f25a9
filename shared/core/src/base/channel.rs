//! OTP channels as the client names them, and the primitive delivery pipes.

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};

/// A channel a client may ask for in `passwordless-start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    Sms,
    Whatsapp,
    SmsAndWhatsapp,
    Email,
}

/// One delivery pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Pipe {
    Sms,
    Whatsapp,
    Email,
}

/// Server-side compound values that clients must never send.
const INTERNAL_VALUES: [&str; 3] = ["ALL_CHANNELS", "EMAIL_AND_SMS", "EMAIL_AND_WHATSAPP"];

impl Channel {
    /// Parses the `channel` field: internal values are 400
    /// `CHANNEL_NOT_ALLOWED`, anything else unknown is 422.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "SMS" => Ok(Channel::Sms),
            "WHATSAPP" => Ok(Channel::Whatsapp),
            "SMS_AND_WHATSAPP" => Ok(Channel::SmsAndWhatsapp),
            "EMAIL" => Ok(Channel::Email),
            v if INTERNAL_VALUES.contains(&v) => Err(Error::ChannelNotAllowed(
                "This channel value is internal and cannot be requested",
            )),
            _ => Err(Error::field(
                "channel",
                "must be one of SMS, WHATSAPP, SMS_AND_WHATSAPP, EMAIL",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "SMS",
            Channel::Whatsapp => "WHATSAPP",
            Channel::SmsAndWhatsapp => "SMS_AND_WHATSAPP",
            Channel::Email => "EMAIL",
        }
    }

    /// The pipes a send on this channel uses.
    pub fn pipes(self) -> &'static [Pipe] {
        match self {
            Channel::Sms => &[Pipe::Sms],
            Channel::Whatsapp => &[Pipe::Whatsapp],
            Channel::SmsAndWhatsapp => &[Pipe::Sms, Pipe::Whatsapp],
            Channel::Email => &[Pipe::Email],
        }
    }

    /// The `amr` value of a sign-in proven over this channel.
    pub fn amr(self) -> &'static str {
        match self {
            Channel::Sms => "otp_sms",
            Channel::Whatsapp => "otp_whatsapp",
            Channel::SmsAndWhatsapp => "otp_sms_whatsapp",
            Channel::Email => "otp_email",
        }
    }
}

impl Pipe {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SMS" => Some(Pipe::Sms),
            "WHATSAPP" => Some(Pipe::Whatsapp),
            "EMAIL" => Some(Pipe::Email),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Pipe::Sms => "SMS",
            Pipe::Whatsapp => "WHATSAPP",
            Pipe::Email => "EMAIL",
        }
    }

    pub fn channel(self) -> Channel {
        match self {
            Pipe::Sms => Channel::Sms,
            Pipe::Whatsapp => Channel::Whatsapp,
            Pipe::Email => Channel::Email,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_channel_values_are_not_allowed_and_unknown_ones_are_invalid() {
        assert!(matches!(
            Channel::parse("ALL_CHANNELS"),
            Err(Error::ChannelNotAllowed(_))
        ));
        assert!(matches!(
            Channel::parse("EMAIL_AND_SMS"),
            Err(Error::ChannelNotAllowed(_))
        ));
        assert!(matches!(Channel::parse("PIGEON"), Err(Error::Validation(_))));
        assert!(matches!(Channel::parse("sms"), Err(Error::Validation(_))));
        assert_eq!(Channel::parse("SMS_AND_WHATSAPP").ok(), Some(Channel::SmsAndWhatsapp));
    }
}
