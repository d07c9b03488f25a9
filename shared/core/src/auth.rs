//! The passwordless sign-up / sign-in flow (endpoint contract §1–§6, §12–§13):
//! check → channels → passwordless-start → verify-otp → onboarding/primary,
//! resend, refresh and revoke.
//!
//! Each function takes already-parsed input where it can, returns a domain
//! result, and never logs a code, a token or a full phone number.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, Month};
use tracing::{info, warn};

use crate::app::App;
use crate::channel::{Channel, Pipe};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, EventType, emit};
use crate::ids::{DeviceId, SessionId, UserId, random_base62};
use crate::limits::{
    Counter, DAY, Guard, HOUR, Rule, Use, breaker_threshold, calling_code, refusal_metric, trailing_days,
};
use crate::mask::{mask_email, mask_phone};
use crate::otp::OtpCode;
use crate::phone::PhoneNumber;
use crate::repo::{
    Db, KnownDevice, OnboardingFlags, OtpSession, Platform, RT_ACTIVE, RT_ROTATED, RefreshRecord, Session, User,
    device_key, from_item, jti_key, otp_key, put_new, refresh_key, session_key, to_item, user_key,
};
use crate::sender::OtpMessage;
use crate::table::{Cond, EXPIRES_AT, Item, Key, TableError, Update, Write};
use crate::tokens::{Claims, DeviceToken, REFRESH_TTL, RefreshToken, TokenKind};

/// The OTP purpose of passwordless sign-in.
pub const PURPOSE_AUTH: &str = "auth";

/// Merges the field errors of several parse results into one 422.
pub fn all_fields<const N: usize>(results: [Result<()>; N]) -> Result<()> {
    let mut fields = FieldErrors::new();
    for r in results {
        match r {
            Ok(()) => {}
            Err(Error::Validation(m)) => fields.extend(m),
            Err(other) => return Err(other),
        }
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(fields))
    }
}

/// Parses a field, keeping the error for [`all_fields`].
pub fn field<T>(slot: &mut Option<T>, r: Result<T>) -> Result<()> {
    r.map(|v| *slot = Some(v))
}

/// A required field's value, or a 422 naming it.
pub fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(Error::field(name, "is required")),
    }
}

// ---------------------------------------------------------------- tokens

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

/// Account tiers from the birthdate (SPEC §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tier {
    Full,
    Restricted,
    Minor,
}

/// An access token, the refresh token of its session and the device's
/// new deviceToken.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub session: Session,
    /// Proves the device known at its next password or OAuth sign-in.
    /// `None` on a refresh (the device keeps the one it has).
    pub device_token: Option<DeviceToken>,
}

/// Where a sign-in happens.
#[derive(Clone, Debug, Default)]
pub struct DeviceInfo {
    pub device_id: String,
    pub device_name: Option<String>,
    pub platform: Option<Platform>,
}

fn today(app: &App) -> Date {
    app.clock.now().date()
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

fn fmt_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// The date `years` after `birth` (29 February → 1 March in common years).
fn anniversary(birth: Date, years: u8) -> Option<Date> {
    let y = birth.year() + i32::from(years);
    Date::from_calendar_date(y, birth.month(), birth.day())
        .or_else(|_| Date::from_calendar_date(y, Month::March, 1))
        .ok()
}

/// The tier of someone born on `birth`, today.
pub fn tier_of(app: &App, birth: Date) -> Tier {
    let now = today(app);
    let reached = |age| anniversary(birth, age).is_some_and(|d| d <= now);
    if reached(app.settings.adult_age) {
        Tier::Full
    } else if reached(app.settings.min_age) {
        Tier::Restricted
    } else {
        Tier::Minor
    }
}

/// The date a blocked (under-age) user may sign in, if still in the future.
pub fn blocked_until(app: &App, user: &User) -> Option<String> {
    let until = parse_date(user.blocked_until.as_deref()?)?;
    (until > today(app)).then(|| fmt_date(until))
}

/// The tier of `user` today (RESTRICTED when the birthdate is unknown).
pub fn tier_of_user(app: &App, user: &User) -> Tier {
    user.birth_date
        .as_deref()
        .and_then(parse_date)
        .map(|b| tier_of(app, b))
        .unwrap_or(Tier::Restricted)
}

/// Writes that open a new session for `user` on `device` (and mark the
/// device known), and its tokens.
pub(crate) fn session_writes(
    app: &App,
    user: &User,
    device: &DeviceInfo,
    amr: Vec<String>,
    now: i64,
) -> Result<(Vec<Write>, Tokens)> {
    let sid = SessionId::generate()?;
    let refresh = RefreshToken::generate()?;
    let session = Session {
        sid: sid.clone(),
        user_id: user.id.clone(),
        device_id: device.device_id.clone(),
        device_name: device.device_name.clone(),
        platform: device.platform,
        amr,
        created_at: now,
        last_used_at: now,
        current_rt: refresh.hash(),
        revoked: false,
        expires_at: now + REFRESH_TTL,
        epoch: user.session_epoch,
        auth_time: now,
    };
    let record = RefreshRecord {
        sid: sid.clone(),
        user_id: user.id.clone(),
        status: RT_ACTIVE.into(),
        rotated_at: None,
        expires_at: now + REFRESH_TTL,
    };
    let device_token = DeviceToken::generate()?;
    let writes = vec![
        put_new(&session_key(&user.id, &sid), &session, now)?,
        put_new(&refresh_key(&session.current_rt), &record, now)?,
        known_device_write(app, user, &device.device_id, &device_token, now)?,
    ];
    let access_token = access_token(app, user, &session, now)?;
    Ok((
        writes,
        Tokens {
            access_token,
            refresh_token: refresh,
            expires_in: TokenKind::Access.ttl(),
            session,
            device_token: Some(device_token),
        },
    ))
}

/// The write that makes `device_id` known for `user` until
/// `DEVICE_TRUST_DAYS` from now, to whoever presents `token` (its hash
/// replaces the previous one: a deviceToken rotates at every sign-in).
pub(crate) fn known_device_write(
    app: &App,
    user: &User,
    device_id: &str,
    token: &DeviceToken,
    now: i64,
) -> Result<Write> {
    let device = KnownDevice {
        device_id: device_id.to_owned(),
        last_seen: now,
        expires_at: now + app.settings.device_trust,
        token_hash: Some(token.hash()),
    };
    Ok(Write::Put {
        item: to_item(&device_key(&user.id, device_id), &device)?,
        cond: None,
    })
}

/// Whether the known-device item `item` (read under the user and the
/// request's deviceId) vouches for the request: it is live and holds the
/// hash of the deviceToken `presented`. A missing or malformed token is an
/// unknown device, not an error.
pub(crate) fn device_proven(item: Option<Item>, presented: Option<&str>) -> Result<bool> {
    let (Some(item), Some(token)) = (item, presented.and_then(DeviceToken::parse)) else {
        return Ok(false);
    };
    let device: KnownDevice = from_item(item)?;
    Ok(device.token_hash.is_some_and(|h| token.matches(&h)))
}

/// A signed access token for `user` in `session`.
pub fn access_token(app: &App, user: &User, session: &Session, now: i64) -> Result<String> {
    let body = AccessBody {
        phone: user.phone.clone(),
        ctry: user.country.clone(),
        tier: tier_of_user(app, user),
        sid: session.sid.clone(),
        amr: session.amr.clone(),
        onb: user.flags(),
        auth_time: session.auth_time,
    };
    Ok(app.keys.issue(TokenKind::Access, user.id.as_str(), body, now)?.0)
}

fn map_store(e: TableError) -> Error {
    Error::from(e)
}

// ---------------------------------------------------------------- limits

/// Logs and counts a refusal by `counter`, and returns the 429.
pub(crate) fn refused(app: &App, counter: &Counter, country: &str, now: i64) -> Error {
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

/// The per-phone failed-verification counter of the current window.
pub(crate) fn failure_counter(app: &App, phone: &str, now: i64) -> Counter {
    Counter::new(Rule::VerifyFailures, phone, app.settings.limits.verify_failures, now)
}

/// Whether limits apply to `phone` (they are off, or it is a test number).
pub(crate) fn limited(app: &App, phone: &str) -> bool {
    app.settings.limits.enabled && !app.settings.is_test_number(phone)
}

/// Where a code send comes from and what it may allow.
pub(crate) struct SendFrom<'a> {
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
pub(crate) async fn send_guard(app: &App, from: SendFrom<'_>, now: i64) -> Result<Guard> {
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
        let rate = crate::limits::Rate {
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
    let hourly = crate::limits::Rate {
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

/// What a cancelled send transaction means, when `guard`'s writes start at
/// `offset`: a refusal (429), or `None` when only the phone's failure
/// budget lacked room (the send is tried again with one attempt).
pub(crate) enum GuardOutcome {
    Refused(Error),
    NoRoom,
}

pub(crate) fn guard_outcome(
    app: &App,
    e: &TableError,
    guard: &Guard,
    offset: usize,
    country: &str,
    now: i64,
) -> Option<GuardOutcome> {
    guard.failed(e, offset).map(|(c, u)| match u {
        Use::Room(_) => GuardOutcome::NoRoom,
        _ => GuardOutcome::Refused(refused(app, c, country, now)),
    })
}

/// Counts a wrong code on the phone's failure budget and on the device's
/// and the IP's (never refused: failures are counted even past a limit).
pub(crate) async fn record_failure(app: &App, phone: &str, device: &str, ip: Option<&str>, now: i64) -> Result<()> {
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
    app.db.transact(writes).await.map_err(map_store)
}

/// Whether the deployment serves numbers of this country (test numbers always).
pub(crate) fn country_served(app: &App, phone: &PhoneNumber) -> bool {
    app.settings.is_test_number(phone.e164()) || app.settings.limits.country_allowed(phone.country())
}

/// 422 when the deployment does not serve numbers of this country.
pub(crate) fn check_country(app: &App, phone: &PhoneNumber, field: &str) -> Result<()> {
    if country_served(app, phone) {
        Ok(())
    } else {
        Err(Error::field(field, "numbers of this country are not served"))
    }
}

// ---------------------------------------------------------------- check

/// What `/auth/check` found.
pub struct CheckOutcome {
    pub phone: PhoneNumber,
    pub user: Option<User>,
    pub check_token: String,
    /// The nonce a Google or Apple idToken must carry to sign in with this
    /// checkToken (the app passes it to the provider's SDK).
    pub oauth_nonce: String,
}

/// `/auth/check`: is this phone registered? Always returns a checkToken.
pub async fn check(
    app: &App,
    identifier: Option<&str>,
    device_id: Option<&str>,
    ip: Option<&str>,
) -> Result<CheckOutcome> {
    let (mut phone, mut device) = (None, None);
    all_fields([
        field(
            &mut phone,
            required(identifier, "identifier").and_then(|s| parse_phone(app, s, "identifier")),
        ),
        field(&mut device, required(device_id, "deviceId").and_then(DeviceId::parse)),
    ])?;
    let (Some(phone), Some(device)) = (phone, device) else {
        return Err(Error::internal("parsed fields missing"));
    };
    check_country(app, &phone, "identifier")?;
    let now = app.now();
    if let Some(ip) = ip.filter(|_| limited(app, phone.e164())) {
        let c = Counter::new(Rule::CheckIp, ip, app.settings.limits.check_ip, now);
        match app.db.transact(vec![c.increment(1, 60)]).await {
            Ok(()) => {}
            Err(e) if e.failed_at(0) => return Err(refused(app, &c, phone.country(), now)),
            Err(e) => return Err(map_store(e)),
        }
    }
    let user = app.db.user_by_phone(phone.e164(), now).await?;
    let oauth_nonce = random_base62()?;
    let body = CheckBody {
        phone: phone.e164().to_owned(),
        ctry: phone.country().to_owned(),
        did: device.as_str().to_owned(),
        uid: user.as_ref().map(|u| u.id.clone()),
        non: Some(oauth_nonce.clone()),
    };
    let (check_token, _) = app.keys.issue(TokenKind::Check, phone.e164(), body, now)?;
    info!(phone = %phone, exists = user.is_some(), "phone checked");
    Ok(CheckOutcome {
        phone,
        user,
        check_token,
        oauth_nonce,
    })
}

/// Parses a phone number with the deployment's region and test numbers.
pub fn parse_phone(app: &App, s: &str, field: &str) -> Result<PhoneNumber> {
    PhoneNumber::parse_field(s, field, app.settings.default_region, |n| {
        app.settings.is_test_number(n)
    })
}

/// Verifies a checkToken and its binding to `device_id`.
pub(crate) fn verify_check(
    app: &App,
    token: Option<&str>,
    device_id: Option<&str>,
    now: i64,
) -> Result<Claims<CheckBody>> {
    let (mut tok, mut dev) = (None, None);
    all_fields([
        field(&mut tok, required(token, "checkToken")),
        field(&mut dev, required(device_id, "deviceId").and_then(DeviceId::parse)),
    ])?;
    let (Some(tok), Some(dev)) = (tok, dev) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let claims: Claims<CheckBody> = app.keys.verify(TokenKind::Check, tok, now)?;
    if claims.body.did != dev.as_str() {
        return Err(Error::DeviceMismatch);
    }
    Ok(claims)
}

// ---------------------------------------------------------------- channels

/// One channel the user can pick.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelOption {
    pub channel: Pipe,
    pub masked: String,
    pub is_primary: bool,
}

/// `/auth/passwordless/channels`: the pipes offered to this user. Does not
/// consume the checkToken.
pub async fn channels(app: &App, check_token: Option<&str>, device_id: Option<&str>) -> Result<Vec<ChannelOption>> {
    let now = app.now();
    let claims = verify_check(app, check_token, device_id, now)?;
    let mut keys = vec![jti_key(&claims.jti)];
    if let Some(uid) = &claims.body.uid {
        keys.push(user_key(uid));
    }
    let found = app.db.batch_get(&keys, now).await?;
    if found.first().is_some_and(Option::is_some) {
        return Err(Error::TokenAlreadyUsed);
    }
    let user: Option<User> = found.into_iter().nth(1).flatten().map(from_item).transpose()?;
    let masked = mask_phone(&claims.body.phone);
    let primary = app.settings.primary_pipe();
    let mut out: Vec<ChannelOption> = app
        .settings
        .channels
        .iter()
        .map(|p| ChannelOption {
            channel: *p,
            masked: masked.clone(),
            is_primary: *p == primary,
        })
        .collect();
    if let Some(email) = user.as_ref().and_then(User::verified_email) {
        out.push(ChannelOption {
            channel: Pipe::Email,
            masked: mask_email(email),
            is_primary: false,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- start

pub struct StartInput<'a> {
    pub check_token: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub locale: String,
    /// The client's IP (API Gateway's `sourceIp`), for the per-IP limit.
    pub ip: Option<&'a str>,
}

/// What `passwordless-start` (and resend) did.
#[derive(Debug)]
pub struct Sent {
    pub temp_token: String,
    pub masked_destination: String,
    pub channel: Channel,
    /// The pipes the code was delivered over.
    pub delivered: Vec<Pipe>,
    pub expires_in: i64,
    pub resend_after: i64,
    pub resends_left: u32,
    /// The code, only in sandbox mode.
    pub sandbox_otp: Option<String>,
}

/// A fresh code for `phone`: a test number's fixed code or a random one.
fn new_code(app: &App, phone: &str) -> Result<OtpCode> {
    match app.settings.test_numbers.get(phone) {
        Some(code) => Ok(OtpCode::fixed(code)),
        None => OtpCode::generate(6),
    }
}

/// The purpose a message names (for logs and templates).
fn message_purpose(purpose: &str) -> &'static str {
    match purpose {
        crate::password::PURPOSE_RESET => "reset",
        crate::password::PURPOSE_DEVICE => "device",
        crate::account::PURPOSE_EMAIL => "email",
        crate::one_step::PURPOSE_ONE_STEP => "onestep",
        crate::pin_recovery::PURPOSE_EMAIL | crate::pin_recovery::PURPOSE_PHONE => "pin_recovery",
        _ => "auth",
    }
}

/// A random code of `len` digits (integrator sessions: 4–8).
pub(crate) fn new_code_of_length(len: u32) -> Result<OtpCode> {
    OtpCode::generate(len)
}

/// Sends `code` over every pipe of `channel` at once; the pipes that delivered.
async fn deliver(app: &App, session: &OtpSession, channel: Channel, code: &OtpCode) -> Vec<Pipe> {
    if app.settings.is_test_number(&session.phone) {
        return channel.pipes().to_vec();
    }
    let message = |pipe: Pipe| OtpMessage {
        pipe,
        to: session.destination.clone(),
        code: code.clone(),
        locale: session.locale.clone(),
        purpose: message_purpose(&session.purpose),
        ttl: None,
    };
    let results: Vec<(Pipe, bool)> = match channel.pipes() {
        [a, b] => {
            let (ma, mb) = (message(*a), message(*b));
            let (ra, rb) = tokio::join!(app.sender.send(&ma), app.sender.send(&mb));
            vec![(*a, ra.is_ok()), (*b, rb.is_ok())]
                .into_iter()
                .zip([ra.err(), rb.err()])
                .map(|((p, ok), err)| {
                    if let Some(e) = err {
                        warn!(pipe = p.as_str(), error = %e, "delivery failed");
                    }
                    (p, ok)
                })
                .collect()
        }
        pipes => {
            let mut v = Vec::new();
            for p in pipes {
                let r = app.sender.send(&message(*p)).await;
                if let Err(e) = &r {
                    warn!(pipe = p.as_str(), error = %e, "delivery failed");
                }
                v.push((*p, r.is_ok()));
            }
            v
        }
    };
    results.into_iter().filter(|(_, ok)| *ok).map(|(p, _)| p).collect()
}

/// `/auth/passwordless-start`: consumes the checkToken, opens the OTP session
/// (replacing any earlier one for this phone) and sends the code.
pub async fn start(app: &App, input: StartInput<'_>) -> Result<Sent> {
    let now = app.now();
    let mut channel = None;
    let claims = {
        let mut claims = None;
        all_fields([
            field(&mut claims, verify_check(app, input.check_token, input.device_id, now)),
            field(
                &mut channel,
                required(input.channel, "channel").and_then(Channel::parse),
            ),
        ])?;
        claims.ok_or_else(|| Error::internal("parsed fields missing"))?
    };
    let channel = channel.ok_or_else(|| Error::internal("parsed fields missing"))?;
    let body = &claims.body;
    check_country(app, &PhoneNumber::from_trusted(&body.phone, &body.ctry), "identifier")?;
    let destination = match channel {
        Channel::Email => {
            let Some(uid) = &body.uid else {
                return Err(Error::ChannelNotAllowed("EMAIL is only available to existing users"));
            };
            let user: Option<User> = app.db.get(&user_key(uid), now).await?;
            user.as_ref()
                .and_then(User::verified_email)
                .map(str::to_owned)
                .ok_or(Error::NoVerifiedEmail)?
        }
        c if !app.settings.offers(c) => {
            return Err(Error::ChannelNotAllowed("This channel is not offered"));
        }
        _ => body.phone.clone(),
    };
    let mut used = Item::new();
    used.insert(EXPIRES_AT.into(), Value::from(claims.exp));
    let check_used = jti_key(&claims.jti);
    let opened = open_otp(
        app,
        NewOtp {
            purpose: PURPOSE_AUTH,
            phone: &body.phone,
            country: &body.ctry,
            user_id: body.uid.clone(),
            device_id: &body.did,
            channel,
            destination,
            locale: input.locale,
            ip: input.ip,
            max_attempts: None,
        },
        vec![Write::Put {
            item: to_item(&check_used, &used)?,
            cond: Some(Cond::absent_at(now)),
        }],
        |e| e.failed_at(0).then_some(Error::TokenAlreadyUsed),
        // Give the checkToken back so the user can pick another channel.
        vec![Write::Delete {
            key: check_used.clone(),
            cond: None,
        }],
    )
    .await?;
    sent(app, &opened, body.uid.clone(), now)
}

/// The `Sent` of a freshly opened session: its tempToken (whose `jti` is
/// the session id) and what the client shows.
pub(crate) fn sent(app: &App, opened: &Opened, uid: Option<UserId>, now: i64) -> Result<Sent> {
    let session = &opened.session;
    let temp_body = TempBody {
        phone: session.phone.clone(),
        purpose: session.purpose.clone(),
        uid,
    };
    let (temp_token, _) =
        app.keys
            .issue_with_jti(TokenKind::Temp, &session.phone, &session.session_id, temp_body, now)?;
    Ok(Sent {
        temp_token,
        masked_destination: masked_destination(session),
        channel: session.channel,
        delivered: opened.delivered.clone(),
        expires_in: app.settings.otp_ttl,
        resend_after: app.settings.resend_cooldown,
        resends_left: app.settings.max_resends,
        sandbox_otp: app.settings.sandbox.then(|| opened.code.expose().to_owned()),
    })
}

/// An OTP session to open.
pub(crate) struct NewOtp<'a> {
    pub purpose: &'static str,
    pub phone: &'a str,
    pub country: &'a str,
    pub user_id: Option<UserId>,
    pub device_id: &'a str,
    pub channel: Channel,
    /// E.164 number or email address.
    pub destination: String,
    pub locale: String,
    pub ip: Option<&'a str>,
    /// Wrong codes that end the session (`None`: `OTP_MAX_ATTEMPTS`).
    pub max_attempts: Option<u32>,
}

/// An opened session, its code and the pipes that delivered it.
pub(crate) struct Opened {
    pub session: OtpSession,
    pub code: OtpCode,
    pub delivered: Vec<Pipe>,
}

/// Opens the OTP session of `new`, replacing any earlier one of its
/// purpose for the phone (only the latest is valid), and sends the code.
///
/// One transaction holds `before` (the caller's writes, e.g. consuming a
/// checkToken), the session and the send counters; `before_err` names the
/// refusal when one of `before` fails its condition. When the phone's
/// failure budget has less room than the session's attempts, the session
/// is opened with one attempt instead. When no pipe delivers, the session
/// is removed with `undo` and the answer is `DELIVERY_FAILED`.
pub(crate) async fn open_otp(
    app: &App,
    new: NewOtp<'_>,
    before: Vec<Write>,
    before_err: impl Fn(&TableError) -> Option<Error>,
    undo: Vec<Write>,
) -> Result<Opened> {
    let now = app.now();
    let code = new_code(app, new.phone)?;
    let session_id = random_base62()?;
    let attempts = new.max_attempts.unwrap_or(app.settings.otp_max_attempts);
    let mut session = OtpSession {
        session_id: session_id.clone(),
        purpose: new.purpose.into(),
        phone: new.phone.to_owned(),
        country: new.country.to_owned(),
        user_id: new.user_id,
        device_id: new.device_id.to_owned(),
        channel: new.channel,
        destination: new.destination,
        code_hash: app.pepper.hash(&session_id, &code),
        attempts_left: attempts,
        resends: 0,
        sent_at: now,
        code_expires_at: now + app.settings.otp_ttl,
        expires_at: now + TokenKind::Temp.ttl(),
        consumed: false,
        locale: new.locale,
    };
    let otp = otp_key(new.purpose, new.phone);
    let from = SendFrom {
        phone: new.phone,
        device: new.device_id,
        ip: new.ip,
        attempts,
    };
    let mut guard = send_guard(app, from, now).await?;
    let offset = before.len() + 1;
    loop {
        let mut writes = before.clone();
        writes.push(Write::Put {
            item: to_item(&otp, &session)?,
            cond: None,
        });
        writes.extend(guard.writes());
        let Err(e) = app.db.transact(writes).await else {
            break;
        };
        if let Some(refusal) = before_err(&e) {
            return Err(refusal);
        }
        match guard_outcome(app, &e, &guard, offset, new.country, now) {
            Some(GuardOutcome::Refused(refusal)) => return Err(refusal),
            Some(GuardOutcome::NoRoom) => {
                info!(
                    purpose = new.purpose,
                    "the phone's failure budget is nearly spent: one attempt"
                );
                session.attempts_left = 1;
                guard = guard.without_room();
            }
            None => return Err(map_store(e)),
        }
    }

    let delivered = deliver(app, &session, session.channel, &code).await;
    if delivered.is_empty() {
        // Leave nothing usable behind.
        let mut writes = undo;
        writes.push(Write::Delete {
            key: otp,
            cond: Some(Cond::eq("session_id", session_id.as_str())),
        });
        if let Err(e) = app.db.transact(writes).await {
            warn!(error = %e, "could not roll back a failed send");
        }
        return Err(Error::DeliveryFailed);
    }
    info!(
        phone = %PhoneNumber::from_trusted(&session.phone, &session.country),
        purpose = new.purpose,
        channel = session.channel.as_str(),
        "code sent"
    );
    Ok(Opened {
        session,
        code,
        delivered,
    })
}

fn masked_destination(s: &OtpSession) -> String {
    match s.channel {
        Channel::Email => mask_email(&s.destination),
        _ => mask_phone(&s.destination),
    }
}

// ---------------------------------------------------------------- OTP sessions

/// Why a session cannot take an attempt: it is gone, is not the session
/// `expected` (a tempToken's `jti`), was used, has no attempts left, or its
/// code expired.
fn unusable(session: Option<OtpSession>, expected: Option<&str>, now: i64) -> Error {
    let Some(s) = session else {
        return Error::invalid_flow_token("This code session has ended. Start again");
    };
    if expected.is_some_and(|jti| s.session_id != jti) {
        return Error::invalid_flow_token("A newer code was requested. Use the latest one");
    }
    if s.consumed {
        return Error::TokenAlreadyUsed;
    }
    if s.attempts_left == 0 {
        return Error::TooManyOtpAttempts;
    }
    if now >= s.code_expires_at {
        return Error::OtpExpired;
    }
    // Usable now: it changed between the attempt and this read.
    Error::Conflict("The code session changed meanwhile; retry")
}

/// The condition that the session is still `session_id`, unused, with an
/// attempt left.
fn session_usable(session_id: &str) -> Cond {
    Cond::eq("session_id", session_id)
        .and(Cond::eq("consumed", false))
        .and(Cond::gt("attempts_left", 0))
}

/// A code that matched its session.
pub(crate) struct Checked {
    pub session: OtpSession,
    /// The write that consumes the session, for the caller's transaction
    /// (index 0 there, so that `failed_at(0)` means "already used").
    pub consume: Write,
    /// The items of the extra keys, in order.
    pub extra: Vec<Option<Item>>,
}

/// Checks `code` against the OTP session of `purpose` for `phone` (the
/// session `expected`, a tempToken's `jti`; `None`: the latest one).
///
/// The attempt is taken first: one conditional write decrements the
/// session's attempts while it is live, unused, unexpired and above zero
/// and returns the session — only then is the code compared, so no number
/// of concurrent checks compares more codes than the session allows (the
/// `extra` keys are read at the same time). A wrong code is also counted on
/// the phone's, the device's and the client IP's failure budgets.
pub(crate) async fn check_code(
    app: &App,
    purpose: &str,
    phone: &str,
    expected: Option<&str>,
    code: &OtpCode,
    extra: Vec<Key>,
    ip: Option<&str>,
) -> Result<Checked> {
    let now = app.now();
    let key = otp_key(purpose, phone);
    let mut usable = Cond::eq("consumed", false)
        .and(Cond::gt("attempts_left", 0))
        .and(Cond::gt("code_expires_at", now))
        .and(Cond::gt(EXPIRES_AT, now));
    if let Some(jti) = expected {
        usable = usable.and(Cond::eq("session_id", jti));
    }
    let take = app
        .db
        .update(&key, vec![Update::add("attempts_left", -1)], Some(usable));
    let (taken, extra) = if extra.is_empty() {
        (take.await, Vec::new())
    } else {
        let (taken, read) = tokio::join!(take, app.db.batch_get(&extra, now));
        (taken, read?)
    };
    let item = match taken {
        Ok(item) => item,
        Err(TableError::ConditionFailed) => {
            let session: Option<OtpSession> = app.db.get(&key, now).await?;
            return Err(unusable(session, expected, now));
        }
        Err(e) => return Err(map_store(e)),
    };
    let session: OtpSession = from_item(item)?;
    if !app.pepper.verify(&session.session_id, code, &session.code_hash) {
        record_failure(app, &session.phone, &session.device_id, ip, now).await?;
        return Err(match session.attempts_left {
            0 => Error::TooManyOtpAttempts,
            remaining => Error::InvalidOtp { remaining },
        });
    }
    let consume = Write::Update {
        key,
        ops: vec![Update::set("consumed", true)],
        cond: Some(Cond::eq("session_id", session.session_id.as_str()).and(Cond::eq("consumed", false))),
    };
    Ok(Checked {
        session,
        consume,
        extra,
    })
}

/// The error of a transaction whose write 0 consumed a single-use token or
/// code: `TOKEN_ALREADY_USED` when that write failed.
pub(crate) fn consumed_err(e: TableError) -> Error {
    if e.failed_at(0) {
        Error::TokenAlreadyUsed
    } else {
        map_store(e)
    }
}

// ---------------------------------------------------------------- verify

pub struct VerifyInput<'a> {
    pub temp_token: Option<&'a str>,
    pub otp: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub platform: Option<&'a str>,
    /// The client's IP, whose failure budget a wrong code spends.
    pub ip: Option<&'a str>,
}

/// What a correct code led to.
#[derive(Debug)]
pub enum Verified {
    /// A returning user with primary onboarding done.
    SignedIn { user: Box<User>, tokens: Box<Tokens> },
    /// A new user, or one who has not finished primary onboarding.
    CollectPrimary {
        onboarding_token: String,
        flags: OnboardingFlags,
    },
    /// An under-age user.
    Blocked { unblock_date: String },
}

pub(crate) fn parse_device_extras(
    name: Option<&str>,
    platform: Option<&str>,
) -> Result<(Option<String>, Option<Platform>)> {
    let (mut n, mut p) = (None, None);
    all_fields([
        field(
            &mut n,
            match name.map(str::trim) {
                None | Some("") => Ok(None),
                Some(s) if s.chars().count() <= 100 && !crate::text::has_unsafe_chars(s) => Ok(Some(s.to_owned())),
                Some(_) => Err(Error::field(
                    "deviceName",
                    "must be at most 100 printable characters, without direction overrides",
                )),
            },
        ),
        field(&mut p, platform.map(Platform::parse).transpose()),
    ])?;
    Ok((n.flatten(), p.flatten()))
}

/// `/auth/verify-otp`: checks the code and signs the user in, or starts
/// primary onboarding. Consumes the tempToken.
pub async fn verify(app: &App, input: VerifyInput<'_>) -> Result<Verified> {
    let now = app.now();
    let (mut tok, mut code, mut extras) = (None, None, None);
    all_fields([
        field(&mut tok, required(input.temp_token, "tempToken")),
        field(
            &mut code,
            required(input.otp, "otp").and_then(|s| OtpCode::parse(s, 6, "otp")),
        ),
        field(&mut extras, parse_device_extras(input.device_name, input.platform)),
    ])?;
    let (Some(tok), Some(code), Some((device_name, platform))) = (tok, code, extras) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let claims: Claims<TempBody> = app.keys.verify(TokenKind::Temp, tok, now)?;
    if claims.body.purpose != PURPOSE_AUTH {
        return Err(Error::invalid_flow_token("This token cannot be used here"));
    }
    // One round trip for the session, the failure budget and (when known) the user.
    let extra = claims.body.uid.iter().map(user_key).collect();
    let checked = check_code(
        app,
        PURPOSE_AUTH,
        &claims.body.phone,
        Some(&claims.jti),
        &code,
        extra,
        input.ip,
    )
    .await?;
    let user_item: Option<User> = checked.extra.into_iter().next().flatten().map(from_item).transpose()?;
    let session = checked.session;
    let consume = checked.consume;
    let device = DeviceInfo {
        device_id: session.device_id.clone(),
        device_name,
        platform,
    };
    let amr = vec![session.channel.amr().to_owned()];

    let user = match user_item {
        Some(u) => u,
        None => {
            // A new user: create them with the phone uniqueness item, in the
            // same transaction that consumes the code.
            let user = User::new(UserId::generate()?, &session.phone, &session.country, now);
            let mut writes = vec![consume.clone()];
            writes.extend(Db::create_user_writes(&user, now)?);
            match app.db.transact(writes).await {
                Ok(()) => {
                    info!(user = %user.id, "user registered");
                    let data = serde_json::json!({"flow": "passwordless", "channel": session.channel});
                    emit(app, Event::new(EventType::UserRegistered, Some(&user), data, now)).await;
                    return onboarding(app, &user, &device, amr, now);
                }
                Err(e) if e.failed_at(0) => return Err(Error::TokenAlreadyUsed),
                Err(e) if e.failed_at(2) => {
                    // Someone registered this phone meanwhile: sign in as them.
                    app.db.transact(vec![consume.clone()]).await.map_err(consumed_err)?;
                    let existing = app
                        .db
                        .user_by_phone(&session.phone, now)
                        .await?
                        .ok_or_else(|| Error::internal("phone item without its user"))?;
                    return finish_verified(app, existing, &device, amr, now, None).await;
                }
                Err(e) => return Err(map_store(e)),
            }
        }
    };
    finish_verified(app, user, &device, amr, now, Some(consume)).await
}

/// Signs an existing user in (or sends them to onboarding), consuming the
/// code in the same transaction when `consume` is given.
async fn finish_verified(
    app: &App,
    user: User,
    device: &DeviceInfo,
    amr: Vec<String>,
    now: i64,
    consume: Option<Write>,
) -> Result<Verified> {
    if user.blocked {
        if let Some(c) = consume {
            app.db.transact(vec![c]).await.map_err(consumed_err)?;
        }
        return Err(Error::AccountBlocked);
    }
    if let Some(date) = blocked_until(app, &user) {
        if let Some(c) = consume {
            app.db.transact(vec![c]).await.map_err(consumed_err)?;
        }
        return Ok(Verified::Blocked { unblock_date: date });
    }
    if !user.primary_complete {
        if let Some(c) = consume {
            app.db.transact(vec![c]).await.map_err(consumed_err)?;
        }
        return onboarding(app, &user, device, amr, now);
    }
    let (writes, tokens) = session_writes(app, &user, device, amr, now)?;
    let mut all = Vec::with_capacity(3);
    all.extend(consume);
    all.extend(writes);
    app.db.transact(all).await.map_err(consumed_err)?;
    info!(user = %user.id, sid = %tokens.session.sid, "signed in");
    Ok(Verified::SignedIn {
        user: Box::new(user),
        tokens: Box::new(tokens),
    })
}

fn onboarding(app: &App, user: &User, device: &DeviceInfo, amr: Vec<String>, now: i64) -> Result<Verified> {
    let body = OnboardingBody {
        phone: user.phone.clone(),
        did: device.device_id.clone(),
        amr,
        dname: device.device_name.clone(),
        plt: device.platform,
    };
    let (onboarding_token, _) = app.keys.issue(TokenKind::Onboarding, user.id.as_str(), body, now)?;
    Ok(Verified::CollectPrimary {
        onboarding_token,
        flags: user.flags(),
    })
}

// ---------------------------------------------------------------- resend

/// `/auth/resend-otp`: a new code on the same channel(s); the old code and
/// tempToken die. 60 s cooldown, at most 5 per session; wrong-code attempts
/// carry over.
pub async fn resend(app: &App, temp_token: Option<&str>, ip: Option<&str>) -> Result<Sent> {
    let now = app.now();
    let tok = required(temp_token, "tempToken")?;
    let claims: Claims<TempBody> = app.keys.verify(TokenKind::Temp, tok, now)?;
    let key = otp_key(&claims.body.purpose, &claims.body.phone);
    let s = &app.settings;
    let session: Option<OtpSession> = app.db.get(&key, now).await?;
    let old = match session {
        Some(o) if o.session_id == claims.jti && !o.consumed && o.attempts_left > 0 => o,
        other => return Err(unusable(other, Some(&claims.jti), now)),
    };
    if old.resends >= s.max_resends {
        return Err(Error::TooManyResends);
    }
    let ready_at = old.sent_at + s.resend_cooldown;
    if now < ready_at {
        return Err(Error::ResendCooldown {
            retry_after: (ready_at - now) as u64,
        });
    }
    let code = new_code(app, &old.phone)?;
    let session_id = random_base62()?;
    let code_hash = app.pepper.hash(&session_id, &code);
    let expires_at = now + TokenKind::Temp.ttl();
    // The session keeps the attempts it has left: no room check.
    let from = SendFrom {
        phone: &old.phone,
        device: &old.device_id,
        ip,
        attempts: 0,
    };
    let guard = send_guard(app, from, now).await?.without_room();
    let mut writes = vec![Write::Update {
        key: key.clone(),
        ops: vec![
            Update::set("session_id", session_id.as_str()),
            Update::set("code_hash", code_hash.as_str()),
            Update::set("sent_at", now),
            Update::set("code_expires_at", now + s.otp_ttl),
            Update::set(EXPIRES_AT, expires_at),
            Update::add("resends", 1),
        ],
        cond: Some(
            session_usable(&claims.jti)
                .and(Cond::lt("resends", s.max_resends))
                .and(Cond::le("sent_at", now - s.resend_cooldown)),
        ),
    }];
    writes.extend(guard.writes());
    app.db.transact(writes).await.map_err(|e| {
        if e.failed_at(0) {
            Error::invalid_flow_token("This code session changed. Use the latest code")
        } else {
            match guard_outcome(app, &e, &guard, 1, &old.country, now) {
                Some(GuardOutcome::Refused(refusal)) => refusal,
                _ => map_store(e),
            }
        }
    })?;
    let mut session = old.clone();
    session.session_id = session_id.clone();
    let delivered = deliver(app, &session, old.channel, &code).await;
    if delivered.is_empty() {
        // Put the previous code back, so the failed resend costs nothing.
        let undo = app
            .db
            .update(
                &key,
                vec![
                    Update::set("session_id", old.session_id.as_str()),
                    Update::set("code_hash", old.code_hash.as_str()),
                    Update::set("sent_at", old.sent_at),
                    Update::set("code_expires_at", old.code_expires_at),
                    Update::set(EXPIRES_AT, old.expires_at),
                    Update::add("resends", -1),
                ],
                Some(Cond::eq("session_id", session_id.as_str())),
            )
            .await;
        if let Err(e) = undo {
            warn!(error = %e, "could not roll back a failed resend");
        }
        return Err(Error::DeliveryFailed);
    }
    let body = TempBody {
        phone: old.phone.clone(),
        purpose: old.purpose.clone(),
        uid: old.user_id.clone(),
    };
    let (temp_token, _) = app
        .keys
        .issue_with_jti(TokenKind::Temp, &old.phone, &session_id, body, now)?;
    Ok(Sent {
        temp_token,
        masked_destination: masked_destination(&old),
        channel: old.channel,
        delivered,
        expires_in: s.otp_ttl,
        resend_after: s.resend_cooldown,
        resends_left: s.max_resends - old.resends - 1,
        sandbox_otp: s.sandbox.then(|| code.expose().to_owned()),
    })
}

// ---------------------------------------------------------------- onboarding

pub struct PrimaryInput<'a> {
    pub onboarding_token: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub birth_date: Option<&'a str>,
}

#[derive(Debug)]
pub enum Onboarded {
    Complete {
        user: Box<User>,
        tier: Tier,
        tokens: Box<Tokens>,
    },
    Blocked {
        unblock_date: String,
    },
}

fn parse_name(v: Option<&str>, name: &str) -> Result<String> {
    let s = required(v, name)?.trim();
    let n = s.chars().count();
    if n > 50 {
        return Err(Error::field(name, "must be 1–50 characters"));
    }
    if crate::text::has_unsafe_chars(s) {
        return Err(Error::field(
            name,
            "must not contain control or direction-override characters",
        ));
    }
    if !s.chars().any(char::is_alphabetic) {
        return Err(Error::field(name, "must contain a letter"));
    }
    Ok(s.to_owned())
}

fn parse_birth_date(app: &App, v: Option<&str>) -> Result<Date> {
    let s = required(v, "birthDate")?;
    let d = parse_date(s).ok_or_else(|| Error::field("birthDate", "must be a date as YYYY-MM-DD"))?;
    if d >= today(app) {
        return Err(Error::field("birthDate", "must be in the past"));
    }
    if d.year() < 1900 {
        return Err(Error::field("birthDate", "must be after 1900-01-01"));
    }
    Ok(d)
}

/// `/auth/onboarding/primary`: name and birthdate; the first tokens, or
/// ACCOUNT_BLOCKED under the minimum age. Consumes the onboardingToken.
pub async fn onboard_primary(app: &App, input: PrimaryInput<'_>) -> Result<Onboarded> {
    let now = app.now();
    let (mut tok, mut first, mut last, mut birth) = (None, None, None, None);
    all_fields([
        field(&mut tok, required(input.onboarding_token, "onboardingToken")),
        field(&mut first, parse_name(input.first_name, "firstName")),
        field(&mut last, parse_name(input.last_name, "lastName")),
        field(&mut birth, parse_birth_date(app, input.birth_date)),
    ])?;
    let (Some(tok), Some(first), Some(last), Some(birth)) = (tok, first, last, birth) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let claims: Claims<OnboardingBody> = app.keys.verify(TokenKind::Onboarding, tok, now)?;
    let uid = UserId::parse(&claims.sub).map_err(|_| Error::invalid_flow_token("Invalid onboarding token"))?;
    let key = user_key(&uid);
    let (used, user) = {
        let found = app.db.batch_get(&[jti_key(&claims.jti), key.clone()], now).await?;
        let mut it = found.into_iter();
        (it.next().flatten(), it.next().flatten())
    };
    if used.is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let mut user: User = from_item(user.ok_or(Error::NotFound("Account not found"))?)?;
    if user.primary_complete {
        return Err(Error::OnboardingAlreadyComplete);
    }
    let tier = tier_of(app, birth);
    let birth_s = fmt_date(birth);
    let blocked = (tier == Tier::Minor)
        .then(|| anniversary(birth, app.settings.min_age).map(fmt_date))
        .flatten();
    let mut ops = vec![
        Update::set("first_name", first.as_str()),
        Update::set("last_name", last.as_str()),
        Update::set("birth_date", birth_s.as_str()),
    ];
    match &blocked {
        Some(d) => ops.push(Update::set("blocked_until", d.as_str())),
        None => ops.push(Update::set("primary_complete", true)),
    }
    let mut used = Item::new();
    used.insert(EXPIRES_AT.into(), Value::from(claims.exp));
    let mut writes = vec![
        Write::Put {
            item: to_item(&jti_key(&claims.jti), &used)?,
            cond: Some(Cond::absent_at(now)),
        },
        Write::Update {
            key,
            ops,
            cond: Some(Cond::Exists.and(Cond::ne("primary_complete", true))),
        },
    ];
    user.first_name = Some(first);
    user.last_name = Some(last);
    user.birth_date = Some(birth_s);
    let consumed_err = |e: TableError| {
        if e.failed_at(0) {
            Error::TokenAlreadyUsed
        } else if e.failed_at(1) {
            Error::OnboardingAlreadyComplete
        } else {
            map_store(e)
        }
    };
    if let Some(unblock_date) = blocked {
        app.db.transact(writes).await.map_err(consumed_err)?;
        info!(user = %user.id, "primary onboarding blocked by age");
        return Ok(Onboarded::Blocked { unblock_date });
    }
    user.primary_complete = true;
    let device = DeviceInfo {
        device_id: claims.body.did.clone(),
        device_name: claims.body.dname.clone(),
        platform: claims.body.plt,
    };
    let (session_writes, tokens) = session_writes(app, &user, &device, claims.body.amr.clone(), now)?;
    writes.extend(session_writes);
    // Invites of this number are claimed by this onboarding.
    let invites = crate::invites::pending(app, &user.phone).await?;
    writes.extend(crate::invites::claim_writes(&invites));
    app.db.transact(writes).await.map_err(consumed_err)?;
    info!(user = %user.id, "primary onboarding complete");
    let data = serde_json::json!({"tier": tier});
    emit(app, Event::new(EventType::UserOnboarded, Some(&user), data, now)).await;
    crate::invites::announce_claims(app, &user, &invites).await;
    Ok(Onboarded::Complete {
        user: Box::new(user),
        tier,
        tokens: Box::new(tokens),
    })
}

// ---------------------------------------------------------------- refresh

/// A refreshed pair.
#[derive(Debug)]
pub struct Refreshed {
    pub tokens: Tokens,
}

fn refresh_invalid() -> Error {
    Error::invalid_session_token("Refresh token invalid, expired or revoked")
}

/// Revokes a session family: marks the session revoked and deletes its live
/// refresh token.
pub(crate) async fn revoke_family(app: &App, session: &Session) -> Result<()> {
    app.db
        .transact(vec![
            Write::Update {
                key: session_key(&session.user_id, &session.sid),
                ops: vec![Update::set("revoked", true)],
                cond: Some(Cond::Exists),
            },
            Write::Delete {
                key: refresh_key(&session.current_rt),
                cond: None,
            },
        ])
        .await
        .map_err(map_store)
}

/// `/auth/token/refresh`: rotates the refresh token. A token that was
/// already rotated revokes its whole family (`TOKEN_REUSED`), unless it is
/// presented again within `REFRESH_REUSE_GRACE_SECONDS` of its rotation.
pub async fn refresh(app: &App, refresh_token: Option<&str>) -> Result<Refreshed> {
    let now = app.now();
    let presented = RefreshToken::parse(required(refresh_token, "refreshToken").map_err(|_| refresh_invalid())?)?;
    let hash = presented.hash();
    let record: RefreshRecord = app
        .db
        .get(&refresh_key(&hash), now)
        .await?
        .ok_or_else(refresh_invalid)?;
    let found = app
        .db
        .batch_get(
            &[session_key(&record.user_id, &record.sid), user_key(&record.user_id)],
            now,
        )
        .await?;
    let mut it = found.into_iter();
    let session: Session = it
        .next()
        .flatten()
        .map(from_item)
        .transpose()?
        .ok_or_else(refresh_invalid)?;
    let user: User = it
        .next()
        .flatten()
        .map(from_item)
        .transpose()?
        .ok_or_else(refresh_invalid)?;
    if !session.valid_for(&user) || blocked_until(app, &user).is_some() {
        return Err(refresh_invalid());
    }
    let within_grace = record.status == RT_ROTATED
        && app.settings.refresh_grace > 0
        && record.rotated_at.is_some_and(|t| now - t <= app.settings.refresh_grace);
    if record.status != RT_ACTIVE && !within_grace {
        warn!(user = %user.id, sid = %session.sid, "refresh token reuse: session revoked");
        revoke_family(app, &session).await?;
        reuse_detected(app, &user, &session, now).await;
        return Err(Error::TokenReused);
    }
    // Rotate the presented token, or within the grace window its successor.
    // Never the successor otherwise: a request that read the presented token
    // as active before a concurrent rotation must fail its condition (and be
    // reuse), not rotate the token the other request just issued.
    let live = if record.status == RT_ACTIVE {
        hash.clone()
    } else {
        session.current_rt.clone()
    };
    let next = RefreshToken::generate()?;
    let next_hash = next.hash();
    let new_record = RefreshRecord {
        sid: session.sid.clone(),
        user_id: user.id.clone(),
        status: RT_ACTIVE.into(),
        rotated_at: None,
        expires_at: now + REFRESH_TTL,
    };
    let writes = vec![
        Write::Update {
            key: session_key(&user.id, &session.sid),
            ops: vec![
                Update::set("current_rt", next_hash.as_str()),
                Update::set("last_used_at", now),
                Update::set(EXPIRES_AT, now + REFRESH_TTL),
            ],
            cond: Some(Cond::eq("current_rt", live.as_str()).and(Cond::eq("revoked", false))),
        },
        Write::Update {
            key: refresh_key(&live),
            ops: vec![Update::set("status", RT_ROTATED), Update::set("rotated_at", now)],
            cond: Some(Cond::eq("status", RT_ACTIVE)),
        },
        put_new(&refresh_key(&next_hash), &new_record, now)?,
    ];
    if let Err(e) = app.db.transact(writes).await {
        return match e {
            TableError::TransactionCanceled(v) if v.iter().any(|f| *f) => {
                // Another request rotated this token first: the same token
                // was presented twice, which is reuse.
                warn!(user = %user.id, sid = %session.sid, "concurrent refresh: session revoked");
                if let Some(current) = app.db.get::<Session>(&session_key(&user.id, &session.sid), now).await? {
                    revoke_family(app, &current).await?;
                }
                reuse_detected(app, &user, &session, now).await;
                Err(Error::TokenReused)
            }
            e => Err(map_store(e)),
        };
    }
    let mut session = session;
    session.current_rt = next_hash;
    session.last_used_at = now;
    let access_token = access_token(app, &user, &session, now)?;
    Ok(Refreshed {
        tokens: Tokens {
            access_token,
            refresh_token: next,
            expires_in: TokenKind::Access.ttl(),
            session,
            device_token: None,
        },
    })
}

/// The `session.reuse_detected` event: a rotated refresh token came back
/// (possible theft); the family is revoked.
async fn reuse_detected(app: &App, user: &User, session: &Session, now: i64) {
    let data = serde_json::json!({"session_id": session.sid, "device_name": session.device_name});
    emit(app, Event::new(EventType::SessionReuseDetected, Some(user), data, now)).await;
}

/// `/auth/token/revoke`: ends the session the refresh token belongs to.
pub async fn revoke(app: &App, refresh_token: Option<&str>) -> Result<()> {
    let now = app.now();
    let presented = RefreshToken::parse(required(refresh_token, "refreshToken").map_err(|_| refresh_invalid())?)?;
    let record: RefreshRecord = app
        .db
        .get(&refresh_key(&presented.hash()), now)
        .await?
        .ok_or_else(refresh_invalid)?;
    let mut found = app
        .db
        .batch_get(
            &[session_key(&record.user_id, &record.sid), user_key(&record.user_id)],
            now,
        )
        .await?
        .into_iter();
    let session: Session = found
        .next()
        .flatten()
        .map(from_item)
        .transpose()?
        .ok_or_else(refresh_invalid)?;
    let user: Option<User> = found.next().flatten().map(from_item).transpose()?;
    if session.revoked {
        return Err(refresh_invalid());
    }
    revoke_family(app, &session).await?;
    let data = serde_json::json!({"session_id": session.sid, "reason": "revoke"});
    emit(app, Event::new(EventType::SessionRevoked, user.as_ref(), data, now)).await;
    if record.status != RT_ACTIVE {
        // A rotated token is reuse here too: the family is ended either way.
        warn!(user = %session.user_id, sid = %session.sid, "rotated refresh token presented to revoke: session revoked");
        return Err(Error::TokenReused);
    }
    info!(user = %session.user_id, sid = %session.sid, "session revoked");
    Ok(())
}
