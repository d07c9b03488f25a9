//! Value types: what a request field is once it has been checked. A flow's
//! typed request is made of these (and of [`crate::base::phone`],
//! [`crate::base::otp`], [`crate::base::ids`]), so that a value that got
//! this far is known to be well formed.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::Date;

use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::text::has_unsafe_chars;
use crate::base::time::parse_date;

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

    /// The setting that turns the provider on.
    pub fn setting(self) -> &'static str {
        match self {
            Provider::Google => "GOOGLE_CLIENT_IDS",
            Provider::Apple => "APPLE_CLIENT_IDS",
        }
    }
}

/// The client platform of a sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Platform {
    Android,
    Ios,
    Web,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "ANDROID" => Ok(Platform::Android),
            "IOS" => Ok(Platform::Ios),
            "WEB" => Ok(Platform::Web),
            _ => Err(Error::field("platform", "must be ANDROID, IOS or WEB")),
        }
    }
}

/// What a sign-in may say about its device: a name (at most 100 printable
/// characters) and a platform, both optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceExtras {
    pub name: Option<String>,
    pub platform: Option<Platform>,
}

impl DeviceExtras {
    pub fn parse(name: Option<&str>, platform: Option<&str>) -> Result<Self> {
        let name = match name.map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) if s.chars().count() <= 100 && !has_unsafe_chars(s) => Ok(Some(s.to_owned())),
            Some(_) => Err(Error::field(
                "deviceName",
                "must be at most 100 printable characters, without direction overrides",
            )),
        };
        let (name, platform) = (name, platform.map(Platform::parse).transpose()).all()?;
        Ok(Self { name, platform })
    }
}

/// The one-step flow's optional `device_id`: 1–128 printable characters.
pub fn optional_device_id(v: Option<&str>) -> Result<Option<crate::base::ids::DeviceId>> {
    match v {
        None => Ok(None),
        Some(s) => crate::base::ids::DeviceId::parse(s)
            .map(Some)
            .map_err(|_| Error::field("device_id", "must be 1–128 printable characters")),
    }
}

/// A username: `[a-z0-9_.]{3,30}`, case-insensitive, kept lowercase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(v: Option<&str>) -> Result<Self> {
        let s = required(v, "username")?.trim().to_ascii_lowercase();
        let n = s.len();
        if !(3..=30).contains(&n)
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        {
            return Err(Error::field("username", "must be 3–30 characters of a–z, 0–9, _ and ."));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plausible email address (`local@domain.tld`, at most 254
/// characters), its domain lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(v: Option<&str>) -> Result<Self> {
        let s = required(v, "email")?.trim();
        let bad = || Error::field("email", "must be an email address");
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let domain = domain.to_ascii_lowercase();
        let labels_ok = domain.split('.').count() >= 2
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && local.chars().all(|c| {
                c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | ':' | '\\' | '"' | '[' | ']')
            });
        if s.len() > 254 || !labels_ok || !local_ok {
            return Err(bad());
        }
        Ok(Self(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// PINs nobody should use: the most common ones after repeats and runs.
const COMMON_PINS: [&str; 12] = [
    "1212", "1004", "2000", "6969", "2580", "0852", "1122", "1313", "4321", "121212", "112233", "123123",
];

/// A PIN: 4–6 digits. Never logged (its `Debug` is redacted).
#[derive(Clone)]
pub struct Pin(SecretString);

impl Pin {
    /// A PIN being chosen: 4–6 digits, not a repeat (0000), a run (1234,
    /// 9876) or a common one.
    pub fn new_choice(v: Option<&str>, field: &str) -> Result<Self> {
        let pin = Self::presented(v, field)?;
        let s = pin.0.expose_secret();
        let d: Vec<i16> = s.bytes().map(|b| i16::from(b - b'0')).collect();
        let steps: Vec<i16> = d.windows(2).map(|w| w[1] - w[0]).collect();
        let repeat = steps.iter().all(|x| *x == 0);
        let run = steps.iter().all(|x| *x == 1) || steps.iter().all(|x| *x == -1);
        if repeat || run || COMMON_PINS.contains(&s) {
            return Err(Error::field(field, "is too easy to guess"));
        }
        Ok(pin)
    }

    /// A PIN as presented to be checked: 4–6 digits (the strength rules
    /// apply when it is chosen).
    pub fn presented(v: Option<&str>, field: &str) -> Result<Self> {
        let s = required(v, field)?;
        if !(4..=6).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::field(field, "must be 4 to 6 digits"));
        }
        Ok(Self(SecretString::from(s.to_owned())))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(***)")
    }
}

/// A password. Never logged (its `Debug` is redacted).
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// A password being chosen: 8–128 characters, no control characters.
    pub fn new_choice(v: Option<&str>, field: &str) -> Result<Self> {
        let s = required(v, field)?;
        let n = s.chars().count();
        if n < 8 {
            return Err(Error::field(field, "must be at least 8 characters"));
        }
        if n > 128 {
            return Err(Error::field(field, "must be at most 128 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(Error::field(field, "must not contain control characters"));
        }
        Ok(Self(SecretString::from(s.to_owned())))
    }

    /// A password presented at sign-in or as the current one: non-empty,
    /// at most 1 KiB (Argon2's input is bounded).
    pub fn presented(v: Option<&str>, field: &str) -> Result<Self> {
        match v {
            Some(s) if !s.is_empty() && s.len() <= 1024 => Ok(Self(SecretString::from(s.to_owned()))),
            Some(s) if !s.is_empty() => Err(Error::field(field, "is too long")),
            _ => Err(Error::field(field, "is required")),
        }
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// Whether `other` is the same password (constant time).
    pub fn same_as(&self, other: &str) -> bool {
        crate::base::crypto::ct_eq(self.0.expose_secret().as_bytes(), other.as_bytes())
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A step-up scope: 1–64 of `a–z 0–9 _ . : -` (e.g. `payments:send`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope(String);

impl Scope {
    pub fn parse(v: Option<&str>) -> Result<Self> {
        let s = required(v, "scope")?.trim();
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-'))
        {
            return Err(Error::field("scope", "must be 1–64 of a–z, 0–9, _ . : -"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A first or last name: 1–50 characters with a letter, no control or
/// direction-override characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(v: Option<&str>, field: &str) -> Result<Self> {
        let s = required(v, field)?.trim();
        if s.chars().count() > 50 {
            return Err(Error::field(field, "must be 1–50 characters"));
        }
        if has_unsafe_chars(s) {
            return Err(Error::field(
                field,
                "must not contain control or direction-override characters",
            ));
        }
        if !s.chars().any(char::is_alphabetic) {
            return Err(Error::field(field, "must contain a letter"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A birthdate: `YYYY-MM-DD`, after 1900-01-01 and before `today`.
pub fn birth_date(v: Option<&str>, today: Date) -> Result<Date> {
    let s = required(v, "birthDate")?;
    let d = parse_date(s).ok_or_else(|| Error::field("birthDate", "must be a date as YYYY-MM-DD"))?;
    if d >= today {
        return Err(Error::field("birthDate", "must be in the past"));
    }
    if d.year() < 1900 {
        return Err(Error::field("birthDate", "must be after 1900-01-01"));
    }
    Ok(d)
}

/// A list of interests: 0–20 labels of 1–40 characters, duplicates (by
/// case) dropped.
pub fn interests(v: Option<&Value>) -> Result<Vec<String>> {
    let bad = || Error::field("interests", "must be a list of at most 20 labels of 1–40 characters");
    let items = v.and_then(Value::as_array).ok_or_else(bad)?;
    if items.len() > 20 {
        return Err(bad());
    }
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let s = i.as_str().ok_or_else(bad)?.trim();
        if s.is_empty() || s.chars().count() > 40 || has_unsafe_chars(s) {
            return Err(bad());
        }
        if !out.iter().any(|o| o.to_lowercase() == s.to_lowercase()) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// A bio: up to 300 characters; empty or `null` clears it.
pub fn bio(v: Option<&str>) -> Result<Option<String>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > 300 => Err(Error::field("bio", "must be at most 300 characters")),
        Some(s) if s.chars().any(|c| c.is_control() && c != '\n') || has_unsafe_chars(&s.replace('\n', " ")) => Err(
            Error::field("bio", "must not contain control or direction-override characters"),
        ),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// A picture URL: `https://`, a host, at most 2048 characters; empty or
/// `null` clears it.
pub fn picture_url(v: Option<&str>) -> Result<Option<String>> {
    let s = match v.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(s) => s,
    };
    let bad = || Error::field("profilePic", "must be an https:// URL of at most 2048 characters");
    let rest = s.strip_prefix("https://").ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_ok = !host.is_empty()
        && !host.contains('@')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if s.len() > 2048 || !host_ok || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok(Some(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_pins_are_refused_and_others_accepted() {
        for bad in [
            "0000", "1111", "1234", "123456", "4321", "9876", "654321", "2580", "121212", "12a4", "123", "1234567",
        ] {
            assert!(Pin::new_choice(Some(bad), "pin").is_err(), "{bad}");
        }
        for good in ["1357", "8046", "271828", "90210", "4680"] {
            assert!(Pin::new_choice(Some(good), "pin").is_ok(), "{good}");
        }
        assert!(
            Pin::presented(Some("1234"), "pin").is_ok(),
            "strength is for new PINs only"
        );
    }

    #[test]
    fn passwords_need_eight_characters_and_at_most_128() {
        assert!(Password::new_choice(Some("short"), "p").is_err());
        assert!(Password::new_choice(Some("long enough"), "p").is_ok());
        assert!(Password::new_choice(Some(&"x".repeat(129)), "p").is_err());
        assert!(Password::new_choice(Some("tab\there!"), "p").is_err());
        assert!(Password::presented(Some(&"x".repeat(1025)), "p").is_err());
    }

    #[test]
    fn scopes_are_short_lowercase_words() {
        assert_eq!(
            Scope::parse(Some("payments:send"))
                .ok()
                .map(Scope::into_string)
                .as_deref(),
            Some("payments:send")
        );
        assert!(Scope::parse(Some("Payments")).is_err());
        assert!(Scope::parse(Some(&"a".repeat(65))).is_err());
    }

    #[test]
    fn emails_keep_their_local_part_and_lower_their_domain() {
        let e = Email::parse(Some("Asha.Mwangi@Gmail.COM")).map(Email::into_string);
        assert_eq!(e.ok().as_deref(), Some("Asha.Mwangi@gmail.com"));
        for bad in ["nope", "a@b", "a@-b.com", "<a>@b.com", "a@b..com"] {
            assert!(Email::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames_are_lowercased_and_limited_to_a_small_alphabet() {
        assert_eq!(
            Username::parse(Some(" Asha_M ")).ok().map(|u| u.0).as_deref(),
            Some("asha_m")
        );
        assert!(Username::parse(Some("as")).is_err());
        assert!(Username::parse(Some("asha!")).is_err());
    }

    #[test]
    fn device_extras_name_both_bad_fields() {
        let r = DeviceExtras::parse(Some(&"x".repeat(101)), Some("PALM"));
        match r {
            Err(Error::Validation(m)) => assert_eq!(m.into_keys().collect::<Vec<_>>(), ["deviceName", "platform"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn picture_urls_must_be_https_with_a_host() {
        assert!(picture_url(Some("https://cdn.example.com/a.png")).is_ok_and(|u| u.is_some()));
        assert!(picture_url(Some("")).is_ok_and(|u| u.is_none()));
        for bad in ["http://x.com/a", "https://", "https://u@x.com/", "https://x.com/a b"] {
            assert!(picture_url(Some(bad)).is_err(), "{bad}");
        }
    }
}
