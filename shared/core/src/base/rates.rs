//! The limit settings (docs/DESIGN.md §5): every rate, budget and breaker
//! threshold, read from the environment with its default. Counting against
//! them is [`crate::services::limits`].

use std::collections::{HashMap, HashSet};

use crate::base::error::{Error, Result};

/// Seconds in a day and an hour.
pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;

/// `n` uses per `window` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub limit: u64,
    pub window: i64,
}

/// Every limit (all settings; defaults from SPEC §5).
#[derive(Clone, Debug)]
pub struct Limits {
    /// `RATE_LIMITS` (default on; local mode's `--no-limits` turns it off).
    pub enabled: bool,
    /// `LIMIT_SENDS_PER_PHONE` per `LIMIT_SENDS_PER_PHONE_WINDOW` (5 / 300 s).
    pub phone: Rate,
    /// `LIMIT_SENDS_PER_IP` per hour (20).
    pub ip: Rate,
    /// `LIMIT_SENDS_PER_DEVICE` per hour (10).
    pub device: Rate,
    /// `LIMIT_CHECKS_PER_IP` per minute (30): /auth/check tells whether a number is registered.
    pub check_ip: Rate,
    /// `LIMIT_VERIFY_FAILURES_PER_PHONE` per hour (10), across sessions and
    /// flows. Reaching it does not lock the owner out: a code sent while
    /// fewer failures than a session's attempts are left in it allows one
    /// attempt only.
    pub verify_failures: Rate,
    /// `LIMIT_VERIFY_FAILURES_PER_DEVICE` per hour (10): wrong codes from one
    /// deviceId, whatever the phone; then that device gets no more codes.
    pub verify_failures_device: Rate,
    /// `LIMIT_VERIFY_FAILURES_PER_IP` per hour (20): wrong codes from one
    /// client IP; then that IP gets no more codes.
    pub verify_failures_ip: Rate,
    /// `COUNTRY_DAILY_BUDGET` (10000 sends a day per calling code; 0 = none).
    pub country_daily: u64,
    /// `COUNTRY_DAILY_BUDGETS`: per calling code overrides, `255:2000,1:50000`.
    pub country_daily_overrides: HashMap<u16, u64>,
    /// `ALLOWED_COUNTRIES`: ISO alpha-2 codes (empty = all).
    pub allowed_countries: HashSet<String>,
    /// `BREAKER_MULTIPLE` (10): refuse a country's sends when its last hour
    /// exceeds this multiple of its trailing 7-day hourly average…
    pub breaker_multiple: u64,
    /// `BREAKER_MIN_PER_HOUR` (100): …but never below this many an hour.
    pub breaker_min_per_hour: u64,
    /// `LIMIT_KEY_REQUESTS` per `LIMIT_KEY_REQUESTS_WINDOW` (600 / 60 s):
    /// integrator requests per API key.
    pub key_requests: Rate,
    /// `LIMIT_KEY_SENDS` per `LIMIT_KEY_SENDS_WINDOW` (1000 / 3600 s): codes
    /// and invites sent per API key.
    pub key_sends: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            enabled: true,
            phone: Rate { limit: 5, window: 300 },
            ip: Rate {
                limit: 20,
                window: 3600,
            },
            device: Rate {
                limit: 10,
                window: 3600,
            },
            check_ip: Rate { limit: 30, window: 60 },
            verify_failures: Rate {
                limit: 10,
                window: 3600,
            },
            verify_failures_device: Rate {
                limit: 10,
                window: 3600,
            },
            verify_failures_ip: Rate {
                limit: 20,
                window: 3600,
            },
            country_daily: 10_000,
            country_daily_overrides: HashMap::new(),
            allowed_countries: HashSet::new(),
            breaker_multiple: 10,
            breaker_min_per_hour: 100,
            key_requests: Rate { limit: 600, window: 60 },
            key_sends: Rate {
                limit: 1000,
                window: 3600,
            },
        }
    }
}

fn bad(name: &str, why: &str) -> Error {
    Error::internal(format!("setting {name}: {why}"))
}

fn num<T: std::str::FromStr>(get: &impl Fn(&str) -> Option<String>, name: &str, default: T) -> Result<T> {
    match get(name) {
        None => Ok(default),
        Some(s) => s.trim().parse().map_err(|_| bad(name, "must be a whole number")),
    }
}

impl Limits {
    /// Reads the limit settings through `get`.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self> {
        let d = Limits::default();
        let enabled = match get("RATE_LIMITS").as_deref().map(str::trim) {
            None | Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(_) => return Err(bad("RATE_LIMITS", "must be on or off")),
        };
        let rate = |name: &str, default: Rate| -> Result<Rate> {
            let limit = num(get, name, default.limit)?;
            let window = num(get, &format!("{name}_WINDOW"), default.window)?;
            if limit == 0 || window <= 0 {
                return Err(bad(name, "limit and window must be positive"));
            }
            Ok(Rate { limit, window })
        };
        let mut overrides = HashMap::new();
        for pair in get("COUNTRY_DAILY_BUDGETS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let parsed = pair.split_once(':').and_then(|(cc, n)| {
                Some((
                    cc.trim().trim_start_matches('+').parse::<u16>().ok()?,
                    n.trim().parse::<u64>().ok()?,
                ))
            });
            let (cc, n) =
                parsed.ok_or_else(|| bad("COUNTRY_DAILY_BUDGETS", "entries are callingcode:sends, e.g. 255:2000"))?;
            overrides.insert(cc, n);
        }
        let mut allowed = HashSet::new();
        for c in get("ALLOWED_COUNTRIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(bad(
                    "ALLOWED_COUNTRIES",
                    "entries are ISO-3166 alpha-2 codes, e.g. TZ,KE",
                ));
            }
            allowed.insert(c.to_ascii_uppercase());
        }
        Ok(Self {
            enabled,
            phone: rate("LIMIT_SENDS_PER_PHONE", d.phone)?,
            ip: rate("LIMIT_SENDS_PER_IP", d.ip)?,
            device: rate("LIMIT_SENDS_PER_DEVICE", d.device)?,
            check_ip: rate("LIMIT_CHECKS_PER_IP", d.check_ip)?,
            verify_failures: rate("LIMIT_VERIFY_FAILURES_PER_PHONE", d.verify_failures)?,
            verify_failures_device: rate("LIMIT_VERIFY_FAILURES_PER_DEVICE", d.verify_failures_device)?,
            verify_failures_ip: rate("LIMIT_VERIFY_FAILURES_PER_IP", d.verify_failures_ip)?,
            country_daily: num(get, "COUNTRY_DAILY_BUDGET", d.country_daily)?,
            country_daily_overrides: overrides,
            allowed_countries: allowed,
            breaker_multiple: num(get, "BREAKER_MULTIPLE", d.breaker_multiple)?,
            breaker_min_per_hour: num(get, "BREAKER_MIN_PER_HOUR", d.breaker_min_per_hour)?,
            key_requests: rate("LIMIT_KEY_REQUESTS", d.key_requests)?,
            key_sends: rate("LIMIT_KEY_SENDS", d.key_sends)?,
        })
    }

    /// Whether codes may be sent to numbers of `country` (ISO alpha-2).
    pub fn country_allowed(&self, country: &str) -> bool {
        self.allowed_countries.is_empty() || self.allowed_countries.contains(country)
    }

    /// The daily send budget of a calling code (`None` = unlimited).
    pub fn country_budget(&self, calling_code: u16) -> Option<u64> {
        let n = self
            .country_daily_overrides
            .get(&calling_code)
            .copied()
            .unwrap_or(self.country_daily);
        (n > 0).then_some(n)
    }
}

/// Which rule refused a request (metrics dimension and log field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Phone,
    Ip,
    Device,
    CheckIp,
    VerifyFailures,
    VerifyFailuresDevice,
    VerifyFailuresIp,
    CountryDaily,
    CountryBreaker,
    ApiKeyRequests,
    ApiKeySends,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Phone => "phone",
            Rule::Ip => "ip",
            Rule::Device => "device",
            Rule::CheckIp => "check_ip",
            Rule::VerifyFailures => "verify_failures",
            Rule::VerifyFailuresDevice => "verify_failures_device",
            Rule::VerifyFailuresIp => "verify_failures_ip",
            Rule::CountryDaily => "country_daily",
            Rule::CountryBreaker => "country_breaker",
            Rule::ApiKeyRequests => "api_key_requests",
            Rule::ApiKeySends => "api_key_sends",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Limits> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Limits::from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let l = from(&[]).unwrap();
        assert_eq!(l.phone, Rate { limit: 5, window: 300 });
        assert_eq!(
            l.ip,
            Rate {
                limit: 20,
                window: 3600
            }
        );
        assert_eq!(
            l.device,
            Rate {
                limit: 10,
                window: 3600
            }
        );
        assert_eq!(l.check_ip, Rate { limit: 30, window: 60 });
        assert_eq!(
            l.verify_failures,
            Rate {
                limit: 10,
                window: 3600
            }
        );
        assert!(l.enabled);
    }

    #[test]
    fn settings_parse_and_bad_ones_name_themselves() {
        let l = from(&[
            ("COUNTRY_DAILY_BUDGETS", "255:2000,+1:50000"),
            ("ALLOWED_COUNTRIES", "tz,KE"),
        ])
        .unwrap();
        assert_eq!(l.country_budget(255), Some(2000));
        assert_eq!(l.country_budget(1), Some(50000));
        assert_eq!(l.country_budget(44), Some(10_000));
        assert!(l.country_allowed("TZ") && !l.country_allowed("GB"));
        for (k, v) in [
            ("ALLOWED_COUNTRIES", "TZA"),
            ("LIMIT_SENDS_PER_PHONE", "x"),
            ("RATE_LIMITS", "maybe"),
        ] {
            let e = format!("{:?}", from(&[(k, v)]).err());
            assert!(e.contains(k), "{e}");
        }
    }
}
