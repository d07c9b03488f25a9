//! Identifiers: user ids (`usr_` + 22 base62 = 128 random bits), session
//! ids, token ids, and client-supplied device ids.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::base::crypto::random_bytes;
use crate::base::error::{Error, Result};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_LEN: usize = 22; // 62^22 > 2^128

/// 128 random bits as 22 base62 characters.
pub fn random_base62() -> Result<String> {
    let mut n = u128::from_le_bytes(random_bytes::<16>()?);
    let mut out = [b'0'; ID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    Ok(out.iter().map(|b| *b as char).collect())
}

fn is_base62_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn generate() -> Result<Self> {
                Ok(Self(format!("{}{}", $prefix, random_base62()?)))
            }

            pub fn parse(s: &str) -> Result<Self> {
                match s.strip_prefix($prefix) {
                    Some(rest) if is_base62_id(rest) => Ok(Self(s.to_owned())),
                    _ => Err(Error::field(
                        "id",
                        concat!("must be ", $prefix, " followed by 22 letters or digits"),
                    )),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    UserId,
    "usr_",
    "A user id: `usr_` + 22 base62 characters. Never reused."
);
prefixed_id!(
    SessionId,
    "ses_",
    "A sign-in session (one device's refresh-token family)."
);

/// A client-supplied device identifier: 1–128 printable characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

impl DeviceId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.is_empty() {
            return Err(Error::field("deviceId", "must not be empty"));
        }
        if t.chars().count() > Self::MAX_LEN || crate::base::text::has_unsafe_chars(t) {
            return Err(Error::field(
                "deviceId",
                "must be at most 128 printable characters, without direction overrides",
            ));
        }
        Ok(Self(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DeviceId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<DeviceId> for String {
    fn from(d: DeviceId) -> String {
        d.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_user_ids_parse_and_differ() {
        let a = UserId::generate().unwrap_or_else(|_| UserId(String::new()));
        let b = UserId::generate().unwrap_or_else(|_| UserId(String::new()));
        assert!(a.as_str().starts_with("usr_"));
        assert_eq!(a.as_str().len(), 26);
        assert_eq!(UserId::parse(a.as_str()).ok(), Some(a.clone()));
        assert_ne!(a, b);
    }

    #[test]
    fn device_id_rejects_empty_and_control_characters() {
        assert!(DeviceId::parse("   ").is_err());
        assert!(DeviceId::parse("a\u{0}b").is_err());
        assert!(DeviceId::parse(&"x".repeat(129)).is_err());
        assert_eq!(
            DeviceId::parse(" android-1 ").map(|d| d.0).ok(),
            Some("android-1".into())
        );
    }

    proptest! {
        #[test]
        fn user_id_parse_accepts_only_its_own_shape(s in "\\PC{0,40}") {
            if let Ok(id) = UserId::parse(&s) {
                prop_assert!(id.as_str().starts_with("usr_"));
                prop_assert_eq!(id.as_str().len(), 26);
            }
        }

        #[test]
        fn device_id_never_holds_control_characters(s in "\\PC{0,200}|[\\x00-\\x1f]{1,3}") {
            if let Ok(d) = DeviceId::parse(&s) {
                prop_assert!(!d.as_str().chars().any(char::is_control));
                prop_assert!(!d.as_str().is_empty());
            }
        }
    }
}
