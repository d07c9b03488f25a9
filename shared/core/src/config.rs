//! Plain settings (SPEC §9), read from environment variables by
//! [`Settings::from_lookup`]; each has a default, listed in the README.

use std::collections::HashMap;

use crate::channel::{Channel, Pipe};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::phone::Region;

#[derive(Clone, Debug)]
pub struct Settings {
    /// `STAGE`: dev, staging, prod, … (default `dev`).
    pub stage: String,
    /// `TABLE_NAME` (default `nambari-<stage>`).
    pub table_name: String,
    /// `JWT_ISSUER` (default `nambari`).
    pub issuer: String,
    /// `JWT_AUDIENCE` (default `nambari-apps`).
    pub audience: String,
    /// `SANDBOX`: return codes as `sandboxOtp` (default false; refused in prod).
    pub sandbox: bool,
    /// `DEFAULT_REGION`: accept national formats for this region (default unset).
    pub default_region: Option<Region>,
    /// `TEST_PHONE_NUMBERS`: `+15555550100:123456,…` (default none).
    pub test_numbers: HashMap<String, String>,
    /// `OTP_TTL_SECONDS` (default 120).
    pub otp_ttl: i64,
    /// `OTP_MAX_ATTEMPTS` (default 3).
    pub otp_max_attempts: u32,
    /// `OTP_RESEND_COOLDOWN_SECONDS` (default 60).
    pub resend_cooldown: i64,
    /// `OTP_MAX_RESENDS` (default 5).
    pub max_resends: u32,
    /// `CHANNELS`: the pipes offered, first is primary (default `SMS,WHATSAPP`).
    pub channels: Vec<Pipe>,
    /// `REFRESH_REUSE_GRACE_SECONDS` (default 0, at most 60).
    pub refresh_grace: i64,
    /// `ADULT_AGE` (default 18): FULL tier from this age.
    pub adult_age: u8,
    /// `MIN_AGE` (default 13): blocked below this age.
    pub min_age: u8,
    /// Rate limits and send budgets (see [`Limits`] for each setting).
    pub limits: Limits,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stage: "dev".into(),
            table_name: "nambari-dev".into(),
            issuer: "nambari".into(),
            audience: "nambari-apps".into(),
            sandbox: false,
            default_region: None,
            test_numbers: HashMap::new(),
            otp_ttl: 120,
            otp_max_attempts: 3,
            resend_cooldown: 60,
            max_resends: 5,
            channels: vec![Pipe::Sms, Pipe::Whatsapp],
            refresh_grace: 0,
            adult_age: 18,
            min_age: 13,
            limits: Limits::default(),
        }
    }
}

fn bad(name: &str, why: &str) -> Error {
    Error::internal(format!("setting {name}: {why}"))
}

fn number<T: std::str::FromStr>(name: &str, v: Option<String>, default: T) -> Result<T> {
    match v {
        None => Ok(default),
        Some(s) => s.trim().parse().map_err(|_| bad(name, "must be a number")),
    }
}

fn boolean(name: &str, v: Option<String>, default: bool) -> Result<bool> {
    match v.as_deref().map(str::trim) {
        None => Ok(default),
        Some("1" | "true" | "TRUE" | "yes") => Ok(true),
        Some("0" | "false" | "FALSE" | "no" | "") => Ok(false),
        Some(_) => Err(bad(name, "must be true or false")),
    }
}

impl Settings {
    /// Reads every setting through `get` (e.g. `std::env::var(..).ok()`).
    /// A bad value is an error naming the setting, so a cold start fails
    /// with a readable message.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let d = Settings::default();
        let stage = get("STAGE").unwrap_or(d.stage);
        let sandbox = boolean("SANDBOX", get("SANDBOX"), false)?;
        if sandbox && matches!(stage.as_str(), "prod" | "production") {
            return Err(bad("SANDBOX", "is never allowed in production"));
        }
        let default_region = match get("DEFAULT_REGION").filter(|s| !s.trim().is_empty()) {
            None => None,
            Some(r) => Some(Region::parse(&r).map_err(|_| bad("DEFAULT_REGION", "must be an ISO-3166 alpha-2 code"))?),
        };
        let mut test_numbers = HashMap::new();
        for pair in get("TEST_PHONE_NUMBERS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (phone, code) = pair
                .split_once(':')
                .ok_or_else(|| bad("TEST_PHONE_NUMBERS", "entries are +E164:code"))?;
            let ok_phone = phone.starts_with('+') && phone.len() > 7 && phone[1..].bytes().all(|b| b.is_ascii_digit());
            if !ok_phone || code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("TEST_PHONE_NUMBERS", "entries are +E164:six-digit-code"));
            }
            test_numbers.insert(phone.to_owned(), code.to_owned());
        }
        let channels = match get("CHANNELS") {
            None => d.channels,
            Some(s) => {
                let mut v = Vec::new();
                for p in s.split(',').filter(|p| !p.trim().is_empty()) {
                    let pipe = Pipe::parse(p).ok_or_else(|| bad("CHANNELS", "values are SMS, WHATSAPP"))?;
                    if pipe == Pipe::Email {
                        return Err(bad(
                            "CHANNELS",
                            "EMAIL is offered per user, not as a deployment channel",
                        ));
                    }
                    if !v.contains(&pipe) {
                        v.push(pipe);
                    }
                }
                if v.is_empty() {
                    return Err(bad("CHANNELS", "must name at least one channel"));
                }
                v
            }
        };
        let refresh_grace = number("REFRESH_REUSE_GRACE_SECONDS", get("REFRESH_REUSE_GRACE_SECONDS"), 0i64)?;
        if !(0..=60).contains(&refresh_grace) {
            return Err(bad("REFRESH_REUSE_GRACE_SECONDS", "must be between 0 and 60"));
        }
        let s = Settings {
            table_name: get("TABLE_NAME").unwrap_or_else(|| format!("nambari-{stage}")),
            issuer: get("JWT_ISSUER").unwrap_or(d.issuer),
            audience: get("JWT_AUDIENCE").unwrap_or(d.audience),
            sandbox,
            default_region,
            test_numbers,
            otp_ttl: number("OTP_TTL_SECONDS", get("OTP_TTL_SECONDS"), d.otp_ttl)?,
            otp_max_attempts: number("OTP_MAX_ATTEMPTS", get("OTP_MAX_ATTEMPTS"), d.otp_max_attempts)?,
            resend_cooldown: number(
                "OTP_RESEND_COOLDOWN_SECONDS",
                get("OTP_RESEND_COOLDOWN_SECONDS"),
                d.resend_cooldown,
            )?,
            max_resends: number("OTP_MAX_RESENDS", get("OTP_MAX_RESENDS"), d.max_resends)?,
            channels,
            refresh_grace,
            adult_age: number("ADULT_AGE", get("ADULT_AGE"), d.adult_age)?,
            min_age: number("MIN_AGE", get("MIN_AGE"), d.min_age)?,
            limits: Limits::from_lookup(&get)?,
            stage,
        };
        if !(30..=900).contains(&s.otp_ttl) {
            return Err(bad("OTP_TTL_SECONDS", "must be between 30 and 900"));
        }
        if s.otp_max_attempts == 0 || s.min_age > s.adult_age {
            return Err(bad("OTP_MAX_ATTEMPTS/MIN_AGE", "out of range"));
        }
        Ok(s)
    }

    pub fn is_test_number(&self, e164: &str) -> bool {
        self.test_numbers.contains_key(e164)
    }

    /// The pipe shown as primary in the channel list.
    pub fn primary_pipe(&self) -> Pipe {
        self.channels.first().copied().unwrap_or(Pipe::Sms)
    }

    /// Whether the deployment offers every pipe of `channel` (EMAIL is per user).
    pub fn offers(&self, channel: Channel) -> bool {
        channel
            .pipes()
            .iter()
            .all(|p| *p == Pipe::Email || self.channels.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = from(&[]).unwrap_or_default();
        assert_eq!(
            (s.otp_ttl, s.otp_max_attempts, s.resend_cooldown, s.max_resends),
            (120, 3, 60, 5)
        );
        assert_eq!(s.refresh_grace, 0);
        assert_eq!(s.table_name, "nambari-dev");
    }

    #[test]
    fn sandbox_is_refused_in_production() {
        let e = from(&[("STAGE", "prod"), ("SANDBOX", "true")])
            .err()
            .map(|e| format!("{e:?}"));
        assert!(e.is_some_and(|m| m.contains("SANDBOX")));
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (k, v) in [
            ("OTP_TTL_SECONDS", "abc"),
            ("REFRESH_REUSE_GRACE_SECONDS", "61"),
            ("TEST_PHONE_NUMBERS", "+1555:12"),
            ("CHANNELS", "PIGEON"),
        ] {
            let e = from(&[(k, v)]).err().map(|e| format!("{e:?}")).unwrap_or_default();
            assert!(e.contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn test_numbers_parse() {
        let s = from(&[("TEST_PHONE_NUMBERS", "+15555550100:123456, +15555550101:654321")]).unwrap_or_default();
        assert_eq!(s.test_numbers.get("+15555550101").map(String::as_str), Some("654321"));
    }
}
