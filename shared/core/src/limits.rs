//! Abuse protection (SPEC §5): fixed-window counters on the store, checked
//! and incremented atomically.
//!
//! A counter is one item per rule, subject and window
//! (`RATE#<rule>#<subject>#<window start>`). A use is a conditional `ADD 1`
//! whose condition is `count < limit`; the item expires with its window.
//! Send limits go into the same transaction that opens the OTP session, so a
//! send costs no extra round trip, and a refusal by any rule leaves every
//! other counter (and the checkToken) untouched.
//!
//! Fixed windows, not sliding ones: one item and one conditional write per
//! rule, which DynamoDB does atomically; a sliding log would need a read and
//! a write per request. The price is that a burst straddling a window edge
//! can reach twice the limit for a moment — acceptable for these limits.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::table::{Cond, EXPIRES_AT, Key, Update, Write};

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

/// One counter use: the key of its current window and when the window ends.
#[derive(Clone, Debug)]
pub struct Counter {
    pub rule: Rule,
    pub key: Key,
    pub limit: u64,
    pub window_end: i64,
}

impl Counter {
    /// The counter of `rule` for `subject` in the window containing `now`.
    pub fn new(rule: Rule, subject: &str, rate: Rate, now: i64) -> Self {
        let start = now - now.rem_euclid(rate.window);
        Self {
            rule,
            key: Key::new(format!("RATE#{}#{subject}#{start}", rule.as_str()), "RATE"),
            limit: rate.limit,
            window_end: start + rate.window,
        }
    }

    /// The write that uses `n` units, refused when they would take the
    /// counter past its limit. Counters live a little past their window
    /// (daily counters a week, for the breaker).
    pub fn increment(&self, n: u64, keep_for: i64) -> Write {
        Write::Update {
            key: self.key.clone(),
            ops: vec![
                Update::add("count", i64::try_from(n).unwrap_or(i64::MAX)),
                Update::set(EXPIRES_AT, self.window_end.max(0) + keep_for),
            ],
            cond: Some(self.room_for(n)),
        }
    }

    /// The write that counts `n` units whatever the count (failures are
    /// counted even past the limit).
    pub fn record(&self, n: u64) -> Write {
        Write::Update {
            key: self.key.clone(),
            ops: vec![
                Update::add("count", i64::try_from(n).unwrap_or(i64::MAX)),
                Update::set(EXPIRES_AT, self.window_end.max(0) + 60),
            ],
            cond: None,
        }
    }

    /// The check that the counter is still below its limit (no increment).
    pub fn check(&self) -> Write {
        Write::Check {
            key: self.key.clone(),
            cond: self.room_for(1),
        }
    }

    /// The check that `n` more units fit below the limit.
    pub fn check_room(&self, n: u64) -> Write {
        Write::Check {
            key: self.key.clone(),
            cond: self.room_for(n),
        }
    }

    /// The counter is at most `limit - n` (missing counts as 0); never true
    /// when `n` exceeds the limit.
    fn room_for(&self, n: u64) -> Cond {
        if n > self.limit {
            return Cond::Exists.and(Cond::NotExists);
        }
        Cond::NotExists
            .or(Cond::AttrNotExists("count".into()))
            .or(Cond::le("count", self.limit - n))
    }

    /// Whether a stored counter item is at its limit.
    pub fn exhausted(&self, item: Option<&crate::table::Item>) -> bool {
        item.and_then(|i| i.get("count"))
            .and_then(Value::as_u64)
            .is_some_and(|n| n >= self.limit)
    }

    /// The refusal: 429 with the seconds until the window ends.
    pub fn refusal(&self, now: i64) -> Error {
        Error::RateLimited {
            retry_after: (self.window_end - now).max(1) as u64,
        }
    }
}

/// How a [`Guard`] uses one counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Counts `n` sends; refused when that would pass the limit.
    Count(u64),
    /// Refused when the counter is at its limit; counts nothing.
    Check,
    /// Not a refusal: whether `n` more failures fit in the budget. When they
    /// do not, the caller opens a session with one attempt instead.
    Room(u64),
}

impl Use {
    /// Two uses of one counter as one: counts add up, a count implies the
    /// check, and of two room checks the larger one stands.
    fn merge(self, other: Use) -> Use {
        match (self, other) {
            (Use::Count(a), Use::Count(b)) => Use::Count(a.saturating_add(b)),
            (Use::Count(n), _) | (_, Use::Count(n)) => Use::Count(n),
            (Use::Check, _) | (_, Use::Check) => Use::Check,
            (Use::Room(a), Use::Room(b)) => Use::Room(a.max(b)),
        }
    }
}

/// The counters one request uses, at most one write per counter item: a
/// transaction may not hold two writes to one item (DynamoDB refuses it),
/// so a second use of a counter — two phone channels to one number, two
/// numbers of one country — merges into the first (`ADD n`).
#[derive(Clone, Debug, Default)]
pub struct Guard {
    uses: Vec<(Counter, Use)>,
}

impl Guard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a use of `counter`, merged with an earlier use of the same item.
    pub fn add(&mut self, counter: Counter, used: Use) {
        match self.uses.iter_mut().find(|(c, _)| c.key == counter.key) {
            Some((_, u)) => *u = u.merge(used),
            None => self.uses.push((counter, used)),
        }
    }

    /// Every use of `other`, merged in.
    pub fn extend(&mut self, other: Guard) {
        for (c, u) in other.uses {
            self.add(c, u);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.uses.is_empty()
    }

    pub fn uses(&self) -> &[(Counter, Use)] {
        &self.uses
    }

    /// The guard without its room checks (for the retry that opens a
    /// one-attempt session).
    pub fn without_room(&self) -> Guard {
        Guard {
            uses: self
                .uses
                .iter()
                .filter(|(_, u)| !matches!(u, Use::Room(_)))
                .cloned()
                .collect(),
        }
    }

    /// One write per counter, in the order of [`Guard::uses`].
    pub fn writes(&self) -> Vec<Write> {
        self.uses
            .iter()
            .map(|(c, u)| match u {
                // Daily counters stay a week longer: they are the breaker's history.
                Use::Count(n) => c.increment(*n, if c.rule == Rule::CountryDaily { 8 * DAY } else { 60 }),
                Use::Check => c.check(),
                Use::Room(n) => c.check_room(*n),
            })
            .collect()
    }

    /// The use whose write failed in a transaction where the guard's writes
    /// start at `offset`.
    pub fn failed(&self, e: &crate::table::TableError, offset: usize) -> Option<&(Counter, Use)> {
        self.uses
            .iter()
            .enumerate()
            .find(|(i, _)| e.failed_at(offset + i))
            .map(|(_, u)| u)
    }
}

/// Seconds in a day and an hour.
pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;

/// The country calling code of an E.164 number (0 when unknown).
pub fn calling_code(e164: &str) -> u16 {
    phonenumber::parse(None, e164).map(|n| n.code().value()).unwrap_or(0)
}

/// Per-process cache of circuit-breaker thresholds, refreshed every 5 minutes
/// per calling code (the trailing average changes slowly; reading seven
/// daily counters on every send would cost a round trip).
#[derive(Default)]
pub struct BreakerCache {
    entries: Mutex<HashMap<u16, (u64, i64)>>,
}

impl BreakerCache {
    pub const TTL: i64 = 300;

    pub fn get(&self, cc: u16, now: i64) -> Option<u64> {
        let map = self.entries.lock().ok()?;
        map.get(&cc).filter(|(_, at)| now - at < Self::TTL).map(|(t, _)| *t)
    }

    pub fn put(&self, cc: u16, threshold: u64, now: i64) {
        if let Ok(mut map) = self.entries.lock() {
            map.insert(cc, (threshold, now));
        }
    }
}

/// The daily counter keys of the seven days before `now` (breaker history).
pub fn trailing_days(cc: u16, now: i64) -> Vec<Key> {
    let today = now - now.rem_euclid(DAY);
    (1..=7)
        .map(|d| {
            Key::new(
                format!("RATE#{}#{cc}#{}", Rule::CountryDaily.as_str(), today - d * DAY),
                "RATE",
            )
        })
        .collect()
}

/// The hourly threshold from the trailing daily counts.
pub fn breaker_threshold(limits: &Limits, daily_counts: &[u64]) -> u64 {
    let total: u64 = daily_counts.iter().sum();
    let hourly_avg = total / (7 * 24);
    (hourly_avg.saturating_mul(limits.breaker_multiple)).max(limits.breaker_min_per_hour)
}

/// A CloudWatch embedded-metric-format line for a refusal by `rule`.
pub fn refusal_metric(rule: Rule, country: &str, now: i64) -> String {
    crate::metrics::counter("RateLimited", &[("Rule", rule.as_str()), ("Country", country)], now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Limits> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Limits::from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_spec_s() {
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

    #[test]
    fn a_counter_window_is_aligned_and_its_refusal_counts_down_to_the_edge() {
        let c = Counter::new(Rule::Phone, "+255745051250", Rate { limit: 5, window: 300 }, 1_000_123);
        assert_eq!(c.window_end, 1_000_200);
        assert!(matches!(c.refusal(1_000_150), Error::RateLimited { retry_after: 50 }));
    }

    #[test]
    fn a_guard_merges_uses_of_one_counter_into_one_write() {
        let rate = Rate { limit: 5, window: 300 };
        let c = |s: &str| Counter::new(Rule::Phone, s, rate, 1_000);
        let mut g = Guard::new();
        g.add(c("a"), Use::Count(1));
        g.add(c("b"), Use::Check);
        g.add(c("a"), Use::Count(2));
        g.add(c("b"), Use::Count(1));
        g.add(c("r"), Use::Room(3));
        g.add(c("r"), Use::Room(1));
        let uses: Vec<Use> = g.uses().iter().map(|(_, u)| *u).collect();
        assert_eq!(uses, [Use::Count(3), Use::Count(1), Use::Room(3)]);
        assert_eq!(g.writes().len(), 3);
        let keys: std::collections::HashSet<_> = g.writes().iter().filter_map(Write::key).collect();
        assert_eq!(keys.len(), 3, "one write per item");
        assert_eq!(g.without_room().uses().len(), 2);
    }

    #[test]
    fn a_count_of_n_fits_only_when_n_more_stay_within_the_limit() {
        let c = Counter::new(Rule::Phone, "a", Rate { limit: 5, window: 300 }, 0);
        let item = |n: u64| {
            let mut i = crate::table::Item::new();
            i.insert("count".into(), Value::from(n));
            i
        };
        let fits = |w: Write, n: u64| match w {
            Write::Update { cond: Some(c), .. } | Write::Check { cond: c, .. } => {
                crate::memory::eval(&c, Some(&item(n)))
            }
            _ => false,
        };
        assert!(fits(c.increment(2, 60), 3) && !fits(c.increment(2, 60), 4));
        assert!(fits(c.check(), 4) && !fits(c.check(), 5));
        assert!(fits(c.check_room(3), 2) && !fits(c.check_room(3), 3));
        assert!(!fits(c.increment(6, 60), 0), "more than the limit never fits");
    }

    #[test]
    fn the_breaker_threshold_follows_the_trailing_average_with_a_floor() {
        let l = Limits::default();
        assert_eq!(breaker_threshold(&l, &[0; 7]), 100);
        // 168,000 sends in 7 days = 1,000 an hour → 10,000 an hour trips it.
        assert_eq!(breaker_threshold(&l, &[24_000; 7]), 10_000);
    }

    #[test]
    fn calling_codes_come_from_the_number() {
        assert_eq!(calling_code("+255745051250"), 255);
        assert_eq!(calling_code("+15555550100"), 1);
    }

    #[test]
    fn the_metric_line_is_emf() {
        let v: Value = serde_json::from_str(&refusal_metric(Rule::Ip, "TZ", 10)).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Nambari");
        assert_eq!(
            (v["Rule"].as_str(), v["Country"].as_str(), v["RateLimited"].as_i64()),
            (Some("ip"), Some("TZ"), Some(1))
        );
    }
}
