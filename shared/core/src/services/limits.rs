//! Abuse protection (docs/DESIGN.md §5): fixed-window counters on the
//! store, checked and incremented atomically, and the send guard every code
//! send carries.
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

use serde_json::Value;
use tracing::{info, warn};

use crate::App;
use crate::base::error::{Error, Result};
use crate::base::rates::{DAY, HOUR, Limits, Rate, Rule};
use crate::model::keys::rate_key;
use crate::model::table::{Cond, EXPIRES_AT, Item, Key, Update, Write};
use crate::ports::table::{Refusal, Tx, TxError};

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
            key: rate_key(rule.as_str(), subject, start),
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
    pub fn exhausted(&self, item: Option<&Item>) -> bool {
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

    /// The guard's writes, each tagged with its use (see [`commit_guarded`]).
    pub fn tx(&self) -> Tx<Guarded> {
        let mut tx = Tx::tagged();
        for (i, w) in self.writes().into_iter().enumerate() {
            tx.add_or(w, Guarded::Counter(i));
        }
        tx
    }
}

/// The country calling code of an E.164 number (0 when unknown).
pub fn calling_code(e164: &str) -> u16 {
    phonenumber::parse(None, e164).map(|n| n.code().value()).unwrap_or(0)
}

/// The daily counter keys of the seven days before `now` (breaker history).
pub fn trailing_days(cc: u16, now: i64) -> Vec<Key> {
    let today = now - now.rem_euclid(DAY);
    (1..=7)
        .map(|d| rate_key(Rule::CountryDaily.as_str(), &cc.to_string(), today - d * DAY))
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
    crate::ports::metrics::counter("RateLimited", &[("Rule", rule.as_str()), ("Country", country)], now)
}

/// A transaction tag: the caller's own refusal, or the guard's counter
/// `i` (in the order of [`Guard::uses`]).
#[derive(Clone, Copy, Debug)]
pub enum Guarded {
    Refusal(Refusal),
    Counter(usize),
}

/// Commits `tx`, which holds `guard`'s writes ([`Guard::tx`]) and the
/// caller's ([`Tx::map`] with [`Guarded::Refusal`]): `Ok(true)` when it
/// committed, `Ok(false)` when only the room check of the phone's failure
/// budget failed (the caller retries with one attempt), the refusal (429 of
/// a counter, or the caller's own) otherwise.
pub async fn commit_guarded(app: &App, tx: Tx<Guarded>, guard: &Guard, country: &str, now: i64) -> Result<bool> {
    match app.db.commit(tx).await {
        Ok(()) => Ok(true),
        Err(TxError::Refused(Guarded::Refusal(r))) => Err(r()),
        Err(TxError::Refused(Guarded::Counter(i))) => match guard.uses().get(i) {
            Some((_, Use::Room(_))) => Ok(false),
            Some((c, _)) => Err(refused(app, c, country, now)),
            None => Err(Error::internal("a guard tag without its counter")),
        },
        Err(TxError::Store(e)) => Err(e.into()),
    }
}

/// Logs and counts a refusal by `counter`, and returns the 429.
pub fn refused(app: &App, counter: &Counter, country: &str, now: i64) -> Error {
    if counter.rule == Rule::CountryBreaker {
        warn!(
            rule = counter.rule.as_str(),
            country, "circuit breaker open: sends to this country refused"
        );
    } else {
        info!(rule = counter.rule.as_str(), country, "rate limited");
    }
    app.metrics.emit(refusal_metric(counter.rule, country, now));
    counter.refusal(now)
}

/// Uses `counter` once, alone (a check or a request counter): the 429
/// when it is at its limit.
pub async fn use_one(app: &App, counter: &Counter, country: &str, now: i64) -> Result<()> {
    let mut tx = Tx::tagged();
    tx.add_or(counter.increment(1, 60), ());
    match app.db.commit(tx).await {
        Ok(()) => Ok(()),
        Err(TxError::Refused(())) => Err(refused(app, counter, country, now)),
        Err(TxError::Store(e)) => Err(e.into()),
    }
}

/// The per-phone failed-verification counter of the current window.
pub fn failure_counter(app: &App, phone: &str, now: i64) -> Counter {
    Counter::new(Rule::VerifyFailures, phone, app.settings.limits.verify_failures, now)
}

/// Whether limits apply to `phone` (they are off, or it is a test number).
pub fn limited(app: &App, phone: &str) -> bool {
    app.settings.limits.enabled && !app.settings.is_test_number(phone)
}

/// Where a code send comes from and what it may allow.
pub struct SendFrom<'a> {
    pub phone: &'a str,
    /// The device that asked (empty: none, e.g. the one-step flow or an integrator).
    pub device: &'a str,
    /// The client's IP (none for integrators: their servers).
    pub ip: Option<&'a str>,
    /// The wrong codes the session will allow: when fewer failures than
    /// that are left in the phone's budget, the session allows one.
    pub attempts: u32,
}

/// The counters a code send uses, in one transaction with the send's own
/// writes: per phone, device and IP, the country's daily budget and its
/// circuit breaker (counted); the device's and the IP's failure budgets
/// (checked: a device or network that keeps guessing gets no more codes);
/// and the room left in the phone's failure budget (which sizes the
/// session, never refuses it — a stranger's wrong codes must not lock the
/// owner out). Empty for test numbers or with limits off.
pub async fn send_guard(app: &App, from: SendFrom<'_>, now: i64) -> Result<Guard> {
    let mut guard = Guard::new();
    if !limited(app, from.phone) {
        return Ok(guard);
    }
    let l = &app.settings.limits;
    let phone = from.phone;
    let cc = calling_code(phone);
    guard.add(Counter::new(Rule::Phone, phone, l.phone, now), Use::Count(1));
    if !from.device.is_empty() {
        guard.add(Counter::new(Rule::Device, from.device, l.device, now), Use::Count(1));
        guard.add(
            Counter::new(Rule::VerifyFailuresDevice, from.device, l.verify_failures_device, now),
            Use::Check,
        );
    }
    if let Some(ip) = from.ip {
        guard.add(Counter::new(Rule::Ip, ip, l.ip, now), Use::Count(1));
        guard.add(
            Counter::new(Rule::VerifyFailuresIp, ip, l.verify_failures_ip, now),
            Use::Check,
        );
    }
    if let Some(budget) = l.country_budget(cc) {
        let rate = Rate {
            limit: budget,
            window: DAY,
        };
        guard.add(
            Counter::new(Rule::CountryDaily, &cc.to_string(), rate, now),
            Use::Count(1),
        );
    }
    let threshold = match app.breaker.get(cc, now) {
        Some(t) => t,
        None => {
            let days = app.db.batch_get(&trailing_days(cc, now), now).await?;
            let counts: Vec<u64> = days
                .iter()
                .map(|d| {
                    d.as_ref()
                        .and_then(|i| i.get("count"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                })
                .collect();
            let t = breaker_threshold(l, &counts);
            app.breaker.put(cc, t, now);
            t
        }
    };
    let hourly = Rate {
        limit: threshold,
        window: HOUR,
    };
    guard.add(
        Counter::new(Rule::CountryBreaker, &cc.to_string(), hourly, now),
        Use::Count(1),
    );
    guard.add(failure_counter(app, phone, now), Use::Room(u64::from(from.attempts)));
    Ok(guard)
}

/// Counts a wrong code on the phone's failure budget and on the device's
/// and the IP's (never refused: failures are counted even past a limit).
pub async fn record_failure(app: &App, phone: &str, device: &str, ip: Option<&str>, now: i64) -> Result<()> {
    if !limited(app, phone) {
        return Ok(());
    }
    let l = &app.settings.limits;
    let mut writes = vec![failure_counter(app, phone, now).record(1)];
    if !device.is_empty() {
        writes.push(Counter::new(Rule::VerifyFailuresDevice, device, l.verify_failures_device, now).record(1));
    }
    if let Some(ip) = ip {
        writes.push(Counter::new(Rule::VerifyFailuresIp, ip, l.verify_failures_ip, now).record(1));
    }
    Ok(app.db.transact(writes).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut i = Item::new();
            i.insert("count".into(), Value::from(n));
            i
        };
        let fits = |w: Write, n: u64| match w {
            Write::Update { cond: Some(c), .. } | Write::Check { cond: c, .. } => {
                crate::ports::memory::eval(&c, Some(&item(n)))
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
