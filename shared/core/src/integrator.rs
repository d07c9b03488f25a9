//! The integrator API: multi-channel OTP sessions, user lookup and the
//! step-up check. Every call is made with an API key ([`crate::apikeys`]);
//! fields are snake_case.
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! | --- | --- | --- | --- |
//! | OTP session | `OTPS#<id>` | `OTPS` | `OTPS#KEY#<key id>` / `<created_at>#<id>` |
//!
//! A session keeps one code per channel (each its own HMAC), a verified
//! flag per channel, one wrong-code budget for the whole session and a
//! `version`: every change is a write conditioned on the version it read,
//! so concurrent verifications of two channels cannot lose either. A
//! verification first takes its attempts (one per code it will compare)
//! with such a write, and only then compares: however many verifications
//! arrive at once, no more codes are compared than `max_attempts`.
//! Sessions stay listable for 7 days after they were created (the TTL);
//! a code's expiry is `code_expires_at`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::App;
use crate::account::{fmt_time, parse_email};
use crate::apikeys::{Integrator, send_counter};
use crate::auth::{
    GuardOutcome, SendFrom, StepUpBody, failure_counter, guard_outcome, limited, new_code_of_length, parse_phone,
    send_guard,
};
use crate::channel::Pipe;
use crate::crypto::ct_eq;
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, EventType, emit};
use crate::ids::{UserId, random_base62};
use crate::limits::{Guard, Use};
use crate::otp::OtpCode;
use crate::repo::{Db, Session, User, UserObject, from_item, jti_key, session_key, to_item, user_key};
use crate::sender::OtpMessage;
use crate::table::{Cond, EXPIRES_AT, GSI1, GSI1PK, GSI1SK, Item, Key, Query, TableError, Write};
use crate::tokens::{Claims, TokenKind};

/// How long a session stays listable.
pub const RETENTION: i64 = 7 * 24 * 3600;
/// The largest `metadata`, serialised.
pub const MAX_METADATA: usize = 4096;
/// Optimistic-concurrency retries of a verification or resend.
const VERSION_RETRIES: usize = 4;

fn session_key_of(id: &str) -> Key {
    Key::new(format!("OTPS#{id}"), "OTPS")
}

fn index_pk(key_id: &str) -> String {
    format!("OTPS#KEY#{key_id}")
}

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

    fn pipe(self) -> Pipe {
        match self {
            IChannel::Email => Pipe::Email,
            IChannel::Sms => Pipe::Sms,
            IChannel::Whatsapp => Pipe::Whatsapp,
        }
    }

    fn is_phone(self) -> bool {
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

    fn terminal(self) -> bool {
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
    fn required(&self) -> Vec<IChannel> {
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

fn code_hash(app: &App, session_id: &str, channel: IChannel, code: &OtpCode) -> String {
    app.pepper.hash(&format!("{session_id}:{}", channel.as_str()), code)
}

// ---------------------------------------------------------------- views

/// A channel as the integrator sees it (never a code or a hash).
#[derive(Debug, Serialize)]
pub struct ChannelView {
    pub recipient: String,
    pub verified: bool,
    pub verified_at: Option<String>,
    pub delivered: bool,
}

/// A session as the integrator sees it.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub token: String,
    pub status: Status,
    pub channels: BTreeMap<IChannel, ChannelView>,
    pub verification: Value,
    pub remaining_attempts: u32,
    pub sandbox: bool,
    pub metadata: Map<String, Value>,
    pub created_at: String,
    pub expires_at: String,
    pub resends: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserObject>,
}

fn strategy_json(s: &Strategy) -> Value {
    match s {
        Strategy::All => json!("ALL"),
        Strategy::Any => json!("ANY"),
        Strategy::Channels(c) => json!(c),
    }
}

fn masked_recipient(channel: IChannel, r: &str) -> String {
    match channel {
        IChannel::Email => crate::mask::mask_email(r),
        _ => crate::mask::mask_phone(r),
    }
}

fn view(s: &OtpSessionRecord, now: i64, user: Option<&User>) -> SessionView {
    SessionView {
        token: s.session_id.clone(),
        status: s.status(now),
        channels: s
            .channels
            .iter()
            .map(|(k, c)| {
                (
                    *k,
                    ChannelView {
                        recipient: masked_recipient(*k, &c.recipient),
                        verified: c.verified,
                        verified_at: c.verified_at.map(fmt_time),
                        delivered: c.delivered,
                    },
                )
            })
            .collect(),
        verification: strategy_json(&s.strategy),
        remaining_attempts: s.max_attempts.saturating_sub(s.attempts),
        sandbox: s.sandbox,
        metadata: s.metadata.clone(),
        created_at: fmt_time(s.created_at),
        expires_at: fmt_time(s.code_expires_at),
        resends: s.resends,
        user: user.map(UserObject::from),
    }
}

// ---------------------------------------------------------------- send

/// The parsed body of `POST /otp/send`.
#[derive(Debug)]
pub struct SendRequest {
    pub recipients: BTreeMap<IChannel, String>,
    pub strategy: Strategy,
    pub otp_length: u32,
    pub expiry_minutes: i64,
    pub max_attempts: u32,
    pub metadata: Map<String, Value>,
    pub sandbox: bool,
    pub add_contact: bool,
}

fn int_in(v: Option<&Value>, name: &str, min: i64, max: i64, default: i64, bad: &mut FieldErrors) -> i64 {
    match v {
        None | Some(Value::Null) => default,
        Some(x) => match x.as_i64().filter(|n| (min..=max).contains(n)) {
            Some(n) => n,
            None => {
                bad.insert(name.into(), format!("must be a whole number from {min} to {max}"));
                default
            }
        },
    }
}

fn parse_channel_list(v: &Value, name: &str, bad: &mut FieldErrors) -> Vec<IChannel> {
    let mut out = Vec::new();
    match v.as_array() {
        Some(items) if !items.is_empty() => {
            for i in items {
                match i.as_str().and_then(IChannel::parse) {
                    Some(c) if !out.contains(&c) => out.push(c),
                    Some(_) => {}
                    None => {
                        bad.insert(name.into(), "entries must be email, sms or whatsapp".into());
                    }
                }
            }
        }
        _ => {
            bad.insert(name.into(), "must be a non-empty list of email, sms, whatsapp".into());
        }
    }
    out
}

/// The deepest nesting DynamoDB stores (`metadata` itself is level 1).
pub const MAX_METADATA_DEPTH: usize = 32;

/// Why DynamoDB could not store `v` nested `depth` levels deep, if it
/// could not: a number outside its range (±1e-130 to ±9.99…e125; JSON
/// numbers never carry more than its 38 digits), deeper nesting than 32
/// levels, or an attribute name that is empty or over 64 KiB.
fn unstorable(v: &Value, depth: usize) -> Option<&'static str> {
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0).abs();
            if n.is_f64() && x != 0.0 && !(1e-130..1e126).contains(&x) {
                Some("holds a number DynamoDB cannot store (beyond ±9.9e125 or below ±1e-130)")
            } else {
                None
            }
        }
        Value::Array(_) | Value::Object(_) if depth > MAX_METADATA_DEPTH => Some("is nested deeper than 32 levels"),
        Value::Array(items) => items.iter().find_map(|i| unstorable(i, depth + 1)),
        Value::Object(m) => {
            if m.keys().any(|k| k.is_empty() || k.len() > 65_535) {
                return Some("has an empty or over-long attribute name");
            }
            m.values().find_map(|i| unstorable(i, depth + 1))
        }
        _ => None,
    }
}

/// `metadata`: an object of at most [`MAX_METADATA`] bytes as JSON that
/// DynamoDB can store (none: empty). Checked before anything is sent.
pub fn parse_metadata(v: Option<&Value>) -> Result<Map<String, Value>> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) if serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX) > MAX_METADATA => {
            Err(Error::field("metadata", "must be at most 4 KiB as JSON"))
        }
        Some(o @ Value::Object(m)) => match unstorable(o, 1) {
            Some(why) => Err(Error::field("metadata", why)),
            None => Ok(m.clone()),
        },
        Some(_) => Err(Error::field("metadata", "must be an object")),
    }
}

/// Parses `/otp/send`'s body; every bad field is named in one 422.
pub fn parse_send(app: &App, body: &Map<String, Value>) -> Result<SendRequest> {
    let mut bad = FieldErrors::new();
    let channels = match body.get("channels") {
        Some(v) => parse_channel_list(v, "channels", &mut bad),
        None => {
            bad.insert("channels".into(), "is required".into());
            Vec::new()
        }
    };
    let recipients_in = body.get("recipients").and_then(Value::as_object);
    if body.get("recipients").is_some() && recipients_in.is_none() {
        bad.insert("recipients".into(), "must be an object".into());
    }
    let mut recipients = BTreeMap::new();
    for c in &channels {
        let field = format!("recipients.{}", c.as_str());
        match recipients_in.and_then(|r| r.get(c.as_str())).and_then(Value::as_str) {
            None => {
                bad.insert(field, "is required for this channel".into());
            }
            Some(r) if c.is_phone() => match parse_phone(app, r, &field) {
                Ok(p) if crate::auth::country_served(app, &p) => {
                    recipients.insert(*c, p.e164().to_owned());
                }
                Ok(_) => {
                    bad.insert(field, "numbers of this country are not served".into());
                }
                Err(Error::Validation(m)) => bad.extend(m),
                Err(e) => return Err(e),
            },
            Some(r) => match parse_email(Some(r)) {
                Ok(e) => {
                    recipients.insert(*c, e);
                }
                Err(_) => {
                    bad.insert(field, "must be an email address".into());
                }
            },
        }
    }
    let config = body.get("config");
    let cfg = config.and_then(Value::as_object);
    if config.is_some_and(|c| !c.is_null()) && cfg.is_none() {
        bad.insert("config".into(), "must be an object".into());
    }
    let get = |k: &str| cfg.and_then(|c| c.get(k));
    let otp_length = int_in(get("otp_length"), "config.otp_length", 4, 8, 6, &mut bad) as u32;
    let expiry_minutes = int_in(get("expiry_minutes"), "config.expiry_minutes", 1, 60, 10, &mut bad);
    let max_attempts = int_in(get("max_attempts"), "config.max_attempts", 1, 10, 3, &mut bad) as u32;
    let metadata = match parse_metadata(body.get("metadata")) {
        Ok(m) => m,
        Err(Error::Validation(m)) => {
            bad.extend(m);
            Map::new()
        }
        Err(e) => return Err(e),
    };
    let flag = |k: &str, bad: &mut FieldErrors| match body.get(k) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            bad.insert(k.into(), "must be true or false".into());
            false
        }
    };
    let sandbox = flag("sandbox_mode", &mut bad);
    let add_contact = flag("add_contact", &mut bad);
    let strategy = match body.get("verification") {
        None | Some(Value::Null) => Strategy::All,
        Some(Value::String(s)) if s == "ALL" => Strategy::All,
        Some(Value::String(s)) if s == "ANY" => Strategy::Any,
        Some(v @ Value::Array(_)) => {
            let list = parse_channel_list(v, "verification", &mut bad);
            if list.iter().any(|c| !channels.contains(c)) {
                bad.insert("verification".into(), "may only name channels of the session".into());
            }
            Strategy::Channels(list)
        }
        Some(_) => {
            bad.insert("verification".into(), "must be ALL, ANY or a list of channels".into());
            Strategy::All
        }
    };
    if !bad.is_empty() {
        return Err(Error::Validation(bad));
    }
    Ok(SendRequest {
        recipients,
        strategy,
        otp_length,
        expiry_minutes,
        max_attempts,
        metadata,
        sandbox,
        add_contact,
    })
}

/// What `/otp/send` and `/otp/resend` answer.
#[derive(Debug, Serialize)]
pub struct Sent {
    pub token: String,
    pub status: Status,
    pub channels: BTreeMap<IChannel, ChannelSend>,
    pub expires_at: String,
    pub expires_in_seconds: i64,
    pub sandbox: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_otps: Option<BTreeMap<IChannel, String>>,
}

/// One channel's send.
#[derive(Debug, Serialize)]
pub struct ChannelSend {
    pub recipient: String,
    /// `SENT`, `FAILED` or `SANDBOX` (nothing sent).
    pub status: &'static str,
}

/// Sends `codes` over their channels (nothing in sandbox); which delivered.
async fn deliver(
    app: &App,
    sandbox: bool,
    codes: &BTreeMap<IChannel, (String, OtpCode)>,
    ttl: i64,
    locale: &str,
) -> BTreeMap<IChannel, bool> {
    if sandbox {
        return codes.keys().map(|c| (*c, true)).collect();
    }
    let sends = codes.iter().map(|(c, (to, code))| {
        let msg = OtpMessage {
            pipe: c.pipe(),
            to: to.clone(),
            code: code.clone(),
            locale: locale.to_owned(),
            purpose: "integrator",
            ttl: Some(ttl),
        };
        async move {
            let r = app.sender.send(&msg).await;
            if let Err(e) = &r {
                warn!(channel = c.as_str(), error = %e, "integrator delivery failed");
                app.metrics.emit(crate::metrics::counter(
                    "DeliveryFailed",
                    &[("Channel", c.pipe().as_str())],
                    app.now(),
                ));
            }
            (*c, r.is_ok())
        }
    });
    futures_join(sends).await.into_iter().collect()
}

/// Runs the futures concurrently (a few at most: one per channel).
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    // Three channels at most: join them pairwise without another dependency.
    let mut it = handles.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c)) => {
            let (x, y, z) = tokio::join!(a, b, c);
            out.extend([x, y, z]);
        }
        (Some(a), Some(b), None) => {
            let (x, y) = tokio::join!(a, b);
            out.extend([x, y]);
        }
        (Some(a), None, _) => out.push(a.await),
        _ => {}
    }
    for rest in it {
        out.push(rest.await);
    }
    out
}

/// The send counters of a session's phone channels and of the key, for the
/// session's transaction: per key, and per number, country budget and
/// breaker as for end users (each number once per session, whatever its
/// channels; two numbers of one country count twice on the country) —
/// merged so that no counter item is written twice. Not per IP or device:
/// integrator requests come from the integrator's servers. Each number's
/// failure budget must have room for `attempts` (else the session allows
/// one). Sandbox sessions send nothing and count nothing.
async fn integrator_guard(
    app: &App,
    key_id: &str,
    phones: &[&str],
    sandbox: bool,
    attempts: u32,
    now: i64,
) -> Result<Guard> {
    let mut guard = Guard::new();
    if sandbox || !app.settings.limits.enabled {
        return Ok(guard);
    }
    guard.add(send_counter(app, key_id, now), Use::Count(1));
    let mut seen: Vec<&str> = Vec::new();
    for p in phones {
        if seen.contains(p) || !limited(app, p) {
            continue;
        }
        seen.push(p);
        let from = SendFrom {
            phone: p,
            device: "",
            ip: None,
            attempts,
        };
        guard.extend(send_guard(app, from, now).await?);
    }
    Ok(guard)
}

/// `POST /otp/send`: a session with a code per channel.
pub async fn send(app: &App, caller: &Integrator, req: SendRequest, locale: &str) -> Result<Sent> {
    let now = app.now();
    // A stage without senders can only sandbox: the codes come back.
    let sandbox = req.sandbox || caller.test || app.settings.delivery.senders == crate::config::SenderMode::None;
    let session_id = format!("ots_{}", random_base62()?);
    let mut codes = BTreeMap::new();
    let mut channels = BTreeMap::new();
    for (c, to) in &req.recipients {
        let code = if c.is_phone() {
            match app.settings.test_numbers.get(to.as_str()) {
                Some(fixed) if req.otp_length == 6 => OtpCode::fixed(fixed),
                _ => new_code_of_length(req.otp_length)?,
            }
        } else {
            new_code_of_length(req.otp_length)?
        };
        channels.insert(
            *c,
            ChannelState {
                recipient: to.clone(),
                code_hash: code_hash(app, &session_id, *c, &code),
                verified: false,
                verified_at: None,
                delivered: false,
            },
        );
        codes.insert(*c, (to.clone(), code));
    }
    let ttl = req.expiry_minutes * 60;
    let mut record = OtpSessionRecord {
        session_id: session_id.clone(),
        key_id: caller.key_id.clone(),
        channels,
        strategy: req.strategy,
        otp_length: req.otp_length,
        max_attempts: req.max_attempts,
        attempts: 0,
        created_at: now,
        code_expires_at: now + ttl,
        ttl,
        last_sent_at: now,
        resends: 0,
        sandbox,
        add_contact: req.add_contact,
        metadata: req.metadata,
        status: Status::Pending,
        user_id: None,
        version: 0,
        expires_at: now + RETENTION,
    };
    let phones: Vec<&str> = record
        .channels
        .iter()
        .filter(|(c, _)| c.is_phone())
        .map(|(_, s)| s.recipient.as_str())
        .collect();
    let phones: Vec<String> = phones.iter().map(|s| (*s).to_owned()).collect();
    let phone_refs: Vec<&str> = phones.iter().map(String::as_str).collect();
    let mut guard = integrator_guard(app, &caller.key_id, &phone_refs, sandbox, record.max_attempts, now).await?;
    // The session and the send counters first (a refusal sends nothing),
    // then the codes, then what was delivered.
    let country = phones
        .first()
        .and_then(|p| parse_phone(app, p, "recipient").ok())
        .map(|p| p.country().to_owned())
        .unwrap_or_else(|| "-".into());
    loop {
        let mut writes = vec![save(&record, None)?];
        writes.extend(guard.writes());
        let Err(e) = app.db.transact(writes).await else {
            break;
        };
        match guard_outcome(app, &e, &guard, 1, &country, now) {
            Some(GuardOutcome::Refused(refusal)) => return Err(refusal),
            Some(GuardOutcome::NoRoom) => {
                info!(key_id = %caller.key_id, "a number's failure budget is nearly spent: one attempt");
                record.max_attempts = 1;
                guard = guard.without_room();
            }
            None => return Err(Error::from(e)),
        }
    }
    let delivered = deliver(app, sandbox, &codes, ttl, locale).await;
    if !delivered.values().any(|d| *d) {
        // Nothing reached anyone: leave nothing behind.
        if let Err(e) = app
            .db
            .delete(&session_key_of(&session_id), Some(Cond::eq("version", 0)))
            .await
        {
            warn!(error = %e, "could not remove an undelivered integrator session");
        }
        return Err(Error::DeliveryFailed);
    }
    for (c, ok) in &delivered {
        if let Some(s) = record.channels.get_mut(c) {
            s.delivered = *ok;
        }
    }
    record.version = 1;
    app.db
        .transact(vec![save(&record, Some(0))?])
        .await
        .map_err(Error::from)?;
    info!(key_id = %caller.key_id, session = %session_id, channels = record.channels.len(), sandbox, "integrator code sent");
    Ok(sent_view(&record, &codes, &delivered, now))
}

fn sent_view(
    record: &OtpSessionRecord,
    codes: &BTreeMap<IChannel, (String, OtpCode)>,
    delivered: &BTreeMap<IChannel, bool>,
    now: i64,
) -> Sent {
    Sent {
        token: record.session_id.clone(),
        status: record.status(now),
        channels: codes
            .iter()
            .map(|(c, (to, _))| {
                let status = match (record.sandbox, delivered.get(c).copied().unwrap_or(false)) {
                    (true, _) => "SANDBOX",
                    (false, true) => "SENT",
                    (false, false) => "FAILED",
                };
                (
                    *c,
                    ChannelSend {
                        recipient: masked_recipient(*c, to),
                        status,
                    },
                )
            })
            .collect(),
        expires_at: fmt_time(record.code_expires_at),
        expires_in_seconds: (record.code_expires_at - now).max(0),
        sandbox: record.sandbox,
        sandbox_otps: record.sandbox.then(|| {
            codes
                .iter()
                .map(|(c, (_, code))| (*c, code.expose().to_owned()))
                .collect()
        }),
    }
}

// ---------------------------------------------------------------- load / store

/// The session `token` of `caller`: `NOT_FOUND` for another key's, an
/// unknown one or one past its retention.
async fn load(app: &App, caller: &Integrator, token: Option<&str>) -> Result<OtpSessionRecord> {
    let token = crate::auth::required(token, "token")?;
    if !token.starts_with("ots_") || token.len() > 40 || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(Error::NotFound("No such OTP session"));
    }
    let record: Option<OtpSessionRecord> = app.db.get(&session_key_of(token), app.now()).await?;
    match record {
        Some(r) if ct_eq(r.key_id.as_bytes(), caller.key_id.as_bytes()) => Ok(r),
        _ => Err(Error::NotFound("No such OTP session")),
    }
}

/// Writes `record` if the stored one is still at `read_version` (`None`:
/// if there is none yet).
fn save(record: &OtpSessionRecord, read_version: Option<u64>) -> Result<Write> {
    let mut item = to_item(&session_key_of(&record.session_id), record)?;
    item.insert(GSI1PK.into(), Value::from(index_pk(&record.key_id)));
    item.insert(
        GSI1SK.into(),
        Value::from(format!("{:012}#{}", record.created_at, record.session_id)),
    );
    Ok(Write::Put {
        item,
        cond: Some(match read_version {
            Some(v) => Cond::eq("version", v),
            None => Cond::NotExists,
        }),
    })
}

// ---------------------------------------------------------------- verify

/// What `/otp/verify` answers: the session, and what each submitted code did.
#[derive(Debug, Serialize)]
pub struct Verified {
    #[serde(flatten)]
    pub session: SessionView,
    /// Per submitted channel: `VERIFIED`, `INVALID`, `ALREADY_VERIFIED`,
    /// `NOT_IN_SESSION`, or `SKIPPED` (the session was already over).
    pub results: BTreeMap<String, &'static str>,
}

/// Parses `otps`: channel → code (each of the session's length, checked later).
pub fn parse_otps(v: Option<&Value>) -> Result<BTreeMap<String, String>> {
    let bad = || Error::field("otps", "must be an object of channel → code");
    let m = v.and_then(Value::as_object).ok_or_else(bad)?;
    if m.is_empty() || m.len() > 3 {
        return Err(bad());
    }
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let code = v.as_str().ok_or_else(bad)?;
        if code.len() > 16 {
            return Err(bad());
        }
        out.insert(k.clone(), code.to_owned());
    }
    Ok(out)
}

/// `POST /otp/verify`: each submitted code is checked against its channel;
/// every wrong one counts against the session's `max_attempts` and the
/// number's failure budget.
///
/// The attempts are taken first: one write, conditioned on the session's
/// version, counts every code about to be compared (at most the attempts
/// left; the rest are `SKIPPED`) on the session and on the numbers'
/// failure budgets. Only then are the codes compared; a right one gives its
/// attempt back in the write that marks its channel verified.
pub async fn verify(app: &App, caller: &Integrator, token: Option<&str>, otps: Option<&Value>) -> Result<Verified> {
    let (mut tok, mut codes) = (None, None);
    crate::auth::all_fields([
        crate::auth::field(&mut tok, crate::auth::required(token, "token")),
        crate::auth::field(&mut codes, parse_otps(otps)),
    ])?;
    let (Some(token), Some(otps)) = (tok, codes) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let token = Some(token);
    for _ in 0..VERSION_RETRIES {
        let now = app.now();
        let record = load(app, caller, token).await?;
        let (results, compare) = plan(&record, &otps, now);
        if compare.is_empty() {
            let user = match &record.user_id {
                Some(id) => app.db.get::<User>(&user_key(id), now).await?,
                None => None,
            };
            return Ok(Verified {
                session: view(&record, now, user.as_ref()),
                results,
            });
        }
        // Take one attempt per code, and count each on its number, before
        // comparing any.
        let mut taken = record.clone();
        taken.attempts += compare.len() as u32;
        taken.status = taken.status(now);
        taken.version = record.version + 1;
        let mut writes = vec![save(&taken, Some(record.version))?];
        writes.extend(failure_writes(app, &taken, &compare, 1, now));
        match app.db.transact(writes).await {
            Ok(()) => {}
            Err(e) if e.failed_at(0) => continue,
            Err(e) => return Err(e.into()),
        }
        return compare_taken(app, caller, token, taken, results, &compare, &otps, now).await;
    }
    Err(Error::Conflict("The session changed meanwhile; retry"))
}

/// What each submitted code will do: its result now (not in the session,
/// already verified, or skipped because the session is over or out of
/// attempts), or a place among the codes to compare, in order.
fn plan(
    record: &OtpSessionRecord,
    otps: &BTreeMap<String, String>,
    now: i64,
) -> (BTreeMap<String, &'static str>, Vec<(String, IChannel)>) {
    let mut results = BTreeMap::new();
    let mut compare = Vec::new();
    let over = record.status(now).terminal();
    let left = record.max_attempts.saturating_sub(record.attempts) as usize;
    for name in otps.keys() {
        let result = match IChannel::parse(name).and_then(|c| record.channels.get(&c).map(|s| (c, s))) {
            None => "NOT_IN_SESSION",
            Some(_) if over => "SKIPPED",
            Some((_, state)) if state.verified => "ALREADY_VERIFIED",
            Some(_) if compare.len() >= left => "SKIPPED",
            Some((c, _)) => {
                compare.push((name.clone(), c));
                continue;
            }
        };
        results.insert(name.clone(), result);
    }
    (results, compare)
}

/// The writes that add `sign` × one failure per compared phone code to its
/// number's failure budget, one write per number (counted even past the
/// limit; `sign` -1 gives back what right codes took).
fn failure_writes(
    app: &App,
    record: &OtpSessionRecord,
    codes: &[(String, IChannel)],
    sign: i64,
    now: i64,
) -> Vec<Write> {
    if record.sandbox {
        return Vec::new();
    }
    let mut per_phone: BTreeMap<&str, i64> = BTreeMap::new();
    for (_, c) in codes {
        if let Some(state) = record.channels.get(c).filter(|_| c.is_phone())
            && limited(app, &state.recipient)
        {
            *per_phone.entry(state.recipient.as_str()).or_default() += sign;
        }
    }
    per_phone
        .into_iter()
        .map(|(phone, n)| {
            let c = failure_counter(app, phone, now);
            Write::Update {
                key: c.key.clone(),
                ops: vec![
                    crate::table::Update::add("count", n),
                    crate::table::Update::set(EXPIRES_AT, c.window_end + 60),
                ],
                cond: None,
            }
        })
        .collect()
}

/// Compares the codes whose attempts `taken` holds, then records the right
/// ones (verified, their attempts and failures given back, the contact
/// registered when the session completes) with a write conditioned on the
/// version — re-applied on a fresh read when another verification wrote
/// meanwhile.
#[allow(clippy::too_many_arguments)]
async fn compare_taken(
    app: &App,
    caller: &Integrator,
    token: Option<&str>,
    taken: OtpSessionRecord,
    mut results: BTreeMap<String, &'static str>,
    compare: &[(String, IChannel)],
    otps: &BTreeMap<String, String>,
    now: i64,
) -> Result<Verified> {
    let mut right: Vec<(String, IChannel)> = Vec::new();
    for (name, channel) in compare {
        let matches = otps.get(name).is_some_and(|code| {
            OtpCode::parse(code, taken.otp_length, "otps").is_ok_and(|code| {
                let hash = code_hash(app, &taken.session_id, *channel, &code);
                taken
                    .channels
                    .get(channel)
                    .is_some_and(|s| ct_eq(hash.as_bytes(), s.code_hash.as_bytes()))
            })
        });
        if matches {
            right.push((name.clone(), *channel));
        } else {
            results.insert(name.clone(), "INVALID");
        }
    }
    let before = taken.status(now);
    if right.is_empty() {
        if taken.status(now) == Status::Failed {
            info!(key_id = %caller.key_id, session = %taken.session_id, "integrator session failed");
        }
        return Ok(Verified {
            session: view(&taken, now, None),
            results,
        });
    }
    let mut record = taken;
    for _ in 0..VERSION_RETRIES {
        let read_version = record.version;
        let was = record.status(now);
        let mut given_back = Vec::new();
        for (name, channel) in &right {
            if let Some(state) = record.channels.get_mut(channel)
                && !state.verified
            {
                state.verified = true;
                state.verified_at = Some(now);
                record.attempts = record.attempts.saturating_sub(1);
                given_back.push((name.clone(), *channel));
            }
        }
        let after = record.status(now);
        record.status = after;
        record.version = read_version + 1;
        let completes = after == Status::Verified && was != Status::Verified;
        let mut writes = vec![save(&record, Some(read_version))?];
        let mut user = None;
        let mut new_user = None;
        if completes && record.add_contact && !record.sandbox {
            let (w, u, created) = contact_writes(app, &record, now).await?;
            record.user_id = u.as_ref().map(|u| u.id.clone());
            if let (Some(id), Write::Put { item, .. }) = (&record.user_id, &mut writes[0]) {
                // The stored record names the contact too.
                item.insert("user_id".into(), Value::String(id.to_string()));
            }
            writes.extend(w);
            user = u;
            new_user = created.then(|| user.clone()).flatten();
        }
        writes.extend(failure_writes(app, &record, &given_back, -1, now));
        match app.db.transact(writes).await {
            Ok(()) => {}
            Err(TableError::TransactionCanceled(failed)) if failed.iter().any(|f| *f) => {
                // Another verification wrote meanwhile, or the contact's
                // number was registered: apply the right codes again.
                record = load(app, caller, token).await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        for (name, _) in &right {
            results.insert(name.clone(), "VERIFIED");
        }
        if let Some(u) = &new_user {
            emit(
                app,
                Event::new(
                    EventType::UserRegistered,
                    Some(u),
                    json!({"flow": "integrator", "key_id": caller.key_id}),
                    now,
                ),
            )
            .await;
        }
        if completes && before != Status::Verified {
            info!(key_id = %caller.key_id, session = %record.session_id, "integrator session verified");
            app.metrics.emit(crate::metrics::counter(
                "CodesVerified",
                &[("Channel", "integrator")],
                now,
            ));
            let data = json!({
                "session_id": record.session_id,
                "key_id": caller.key_id,
                "channels": record.channels.iter().filter(|(_, c)| c.verified).map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                "metadata": record.metadata,
                "sandbox": record.sandbox,
            });
            emit(app, Event::new(EventType::OtpVerified, user.as_ref(), data, now)).await;
        }
        if user.is_none()
            && let Some(id) = &record.user_id
        {
            user = app.db.get::<User>(&user_key(id), now).await?;
        }
        return Ok(Verified {
            session: view(&record, now, user.as_ref()),
            results,
        });
    }
    Err(Error::Conflict("The session changed meanwhile; retry"))
}

/// The writes that find or register the user of a verified session's phone
/// (`add_contact`): the user, and whether it is new.
async fn contact_writes(app: &App, record: &OtpSessionRecord, now: i64) -> Result<(Vec<Write>, Option<User>, bool)> {
    let Some(phone) = record
        .channels
        .iter()
        .find(|(c, s)| c.is_phone() && s.verified)
        .map(|(_, s)| s.recipient.clone())
    else {
        return Ok((Vec::new(), None, false));
    };
    if let Some(u) = app.db.user_by_phone(&phone, now).await? {
        return Ok((Vec::new(), Some(u), false));
    }
    let p = parse_phone(app, &phone, "recipient")?;
    let user = User::new(UserId::generate()?, p.e164(), p.country(), now);
    Ok((Db::create_user_writes(&user, now)?, Some(user), true))
}

// ---------------------------------------------------------------- resend

/// `POST /otp/resend`: new codes on `channels` (default: every unverified
/// one); the old codes of those channels die. Same cooldown and resend
/// count as the end-user flow; the expiry restarts.
pub async fn resend(
    app: &App,
    caller: &Integrator,
    token: Option<&str>,
    channels: Option<&Value>,
    locale: &str,
) -> Result<Sent> {
    let mut bad = FieldErrors::new();
    if token.is_none_or(|t| t.trim().is_empty()) {
        bad.insert("token".into(), "is required".into());
    }
    let wanted = match channels {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_channel_list(v, "channels", &mut bad)),
    };
    if !bad.is_empty() {
        return Err(Error::Validation(bad));
    }
    let now = app.now();
    let mut record = load(app, caller, token).await?;
    let read_version = record.version;
    let status = record.status(now);
    if status.terminal() && status != Status::Expired {
        return Err(Error::Conflict("This OTP session is over"));
    }
    let targets: Vec<IChannel> = match &wanted {
        Some(list) => {
            if let Some(c) = list.iter().find(|c| !record.channels.contains_key(c)) {
                return Err(Error::field(
                    "channels",
                    format!("{} is not a channel of the session", c.as_str()),
                ));
            }
            if let Some(c) = list.iter().find(|c| record.channels.get(c).is_some_and(|s| s.verified)) {
                return Err(Error::field("channels", format!("{} is already verified", c.as_str())));
            }
            list.clone()
        }
        None => record
            .channels
            .iter()
            .filter(|(_, s)| !s.verified)
            .map(|(k, _)| *k)
            .collect(),
    };
    if targets.is_empty() {
        return Err(Error::field("channels", "every channel is already verified"));
    }
    if record.resends >= app.settings.max_resends {
        return Err(Error::TooManyResends);
    }
    let ready_at = record.last_sent_at + app.settings.resend_cooldown;
    if now < ready_at {
        return Err(Error::ResendCooldown {
            retry_after: (ready_at - now) as u64,
        });
    }
    let mut codes = BTreeMap::new();
    for c in &targets {
        let to = record.channels.get(c).map(|s| s.recipient.clone()).unwrap_or_default();
        let code = match app.settings.test_numbers.get(to.as_str()) {
            Some(fixed) if c.is_phone() && record.otp_length == 6 => OtpCode::fixed(fixed),
            _ => new_code_of_length(record.otp_length)?,
        };
        codes.insert(*c, (to, code));
    }
    let ttl = record.ttl;
    let phones: Vec<String> = codes
        .iter()
        .filter(|(c, _)| c.is_phone())
        .map(|(_, (to, _))| to.clone())
        .collect();
    let phone_refs: Vec<&str> = phones.iter().map(String::as_str).collect();
    // The session keeps the attempts it has left: no room check.
    let guard = integrator_guard(app, &caller.key_id, &phone_refs, record.sandbox, 0, now)
        .await?
        .without_room();
    let old = record.clone();
    for (c, (_, code)) in &codes {
        let hash = code_hash(app, &record.session_id, *c, code);
        if let Some(s) = record.channels.get_mut(c) {
            s.code_hash = hash;
        }
    }
    record.resends += 1;
    record.last_sent_at = now;
    record.code_expires_at = now + ttl;
    record.status = record.status(now);
    record.version = read_version + 1;
    // The new codes and the counters first (a refusal sends nothing).
    let mut writes = vec![save(&record, Some(read_version))?];
    writes.extend(guard.writes());
    app.db.transact(writes).await.map_err(|e| {
        if e.failed_at(0) {
            Error::Conflict("The session changed meanwhile; retry")
        } else {
            match guard_outcome(app, &e, &guard, 1, "-", now) {
                Some(GuardOutcome::Refused(refusal)) => refusal,
                _ => Error::from(e),
            }
        }
    })?;
    let delivered = deliver(app, record.sandbox, &codes, ttl, locale).await;
    let all_failed = !delivered.values().any(|d| *d);
    if all_failed || delivered.values().any(|d| !*d) {
        // A channel that was not reached keeps its previous code; with none
        // reached the resend did not happen.
        let mut fixed = if all_failed { old.clone() } else { record.clone() };
        if !all_failed {
            for (c, ok) in &delivered {
                if !*ok && let (Some(s), Some(prev)) = (fixed.channels.get_mut(c), old.channels.get(c)) {
                    s.code_hash = prev.code_hash.clone();
                    s.delivered = false;
                }
            }
        }
        fixed.version = record.version + 1;
        if let Err(e) = app.db.transact(vec![save(&fixed, Some(record.version))?]).await {
            warn!(error = %e, "could not restore the codes of an undelivered resend");
        }
        if all_failed {
            return Err(Error::DeliveryFailed);
        }
        record = fixed;
    }
    Ok(sent_view(&record, &codes, &delivered, now))
}

// ---------------------------------------------------------------- list

/// `GET /otp/sessions` filters.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub channel: Option<IChannel>,
    pub sandbox: Option<bool>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// Parses a time filter: epoch seconds, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS[Z]`.
pub fn parse_time(v: &str, field: &str) -> Result<i64> {
    let bad = || Error::field(field, "must be epoch seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    if let Ok(n) = v.parse::<i64>() {
        return Ok(n);
    }
    let v = v.trim_end_matches('Z');
    let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
    let dt_fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Ok(d) = time::Date::parse(v, date_fmt) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    time::PrimitiveDateTime::parse(v, dt_fmt)
        .map(|t| t.assume_utc().unix_timestamp())
        .map_err(|_| bad())
}

/// Builds the filters from query parameters (`get(name)`).
pub fn parse_filter<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<ListFilter> {
    let mut bad = FieldErrors::new();
    let mut f = ListFilter {
        limit: 20,
        ..ListFilter::default()
    };
    if let Some(s) = get("status") {
        match Status::parse(s) {
            Some(st) => f.status = Some(st),
            None => {
                bad.insert(
                    "status".into(),
                    "must be PENDING, PARTIAL, VERIFIED, EXPIRED or FAILED".into(),
                );
            }
        }
    }
    if let Some(s) = get("channel") {
        match IChannel::parse(s) {
            Some(c) => f.channel = Some(c),
            None => {
                bad.insert("channel".into(), "must be email, sms or whatsapp".into());
            }
        }
    }
    if let Some(s) = get("sandbox") {
        match s {
            "true" => f.sandbox = Some(true),
            "false" => f.sandbox = Some(false),
            _ => {
                bad.insert("sandbox".into(), "must be true or false".into());
            }
        }
    }
    for (name, slot) in [("from", &mut f.from), ("to", &mut f.to)] {
        if let Some(s) = get(name) {
            match parse_time(s, name) {
                Ok(t) => *slot = Some(t),
                Err(Error::Validation(m)) => bad.extend(m),
                Err(_) => {}
            }
        }
    }
    if let Some(s) = get("limit") {
        match s.parse::<usize>().ok().filter(|n| (1..=100).contains(n)) {
            Some(n) => f.limit = n,
            None => {
                bad.insert("limit".into(), "must be 1 to 100".into());
            }
        }
    }
    f.cursor = get("cursor").map(str::to_owned);
    if bad.is_empty() {
        Ok(f)
    } else {
        Err(Error::Validation(bad))
    }
}

/// A page of sessions.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub sessions: Vec<SessionView>,
    pub next_cursor: Option<String>,
}

fn encode_cursor(item: &Item) -> String {
    crate::crypto::b64url(Value::Object(item.clone()).to_string().as_bytes())
}

fn decode_cursor(key_id: &str, s: &str) -> Result<Item> {
    let bad = || Error::field("cursor", "is not a cursor of this listing");
    let bytes = crate::crypto::b64url_decode(s).ok_or_else(bad)?;
    let item: Item = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    // A cursor only continues the caller's own listing.
    if item.get(GSI1PK).and_then(Value::as_str) != Some(index_pk(key_id).as_str()) {
        return Err(bad());
    }
    Ok(item)
}

/// The key attributes of a listed item (what a cursor holds).
fn cursor_key(item: &Item) -> Item {
    [crate::table::PK, crate::table::SK, GSI1PK, GSI1SK]
        .iter()
        .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

/// `GET /otp/sessions`: the caller's own sessions, newest first, filtered,
/// with a cursor to the next page. Never a code or a hash. One call reads
/// at most 10 store pages; a listing cut short there still returns a cursor.
pub async fn list(app: &App, caller: &Integrator, f: ListFilter) -> Result<Listed> {
    let now = app.now();
    let mut start = match &f.cursor {
        Some(c) => Some(decode_cursor(&caller.key_id, c)?),
        None => None,
    };
    let mut out = Vec::new();
    for _ in 0..10 {
        let page = app
            .db
            .query(Query {
                index: Some(GSI1),
                pk: index_pk(&caller.key_id),
                sk_prefix: None,
                forward: false,
                limit: 50,
                start: start.take(),
            })
            .await?;
        let count = page.items.len();
        for (i, item) in page.items.into_iter().enumerate() {
            let key = cursor_key(&item);
            if !crate::repo::is_live(&item, now) {
                continue;
            }
            let r: OtpSessionRecord = from_item(item)?;
            if f.from.is_some_and(|t| r.created_at < t) {
                // Newest first: everything after this is older still.
                return Ok(Listed {
                    sessions: out,
                    next_cursor: None,
                });
            }
            let keep = f.status.is_none_or(|s| r.status(now) == s)
                && f.channel.is_none_or(|c| r.channels.contains_key(&c))
                && f.sandbox.is_none_or(|s| r.sandbox == s)
                && f.to.is_none_or(|t| r.created_at <= t);
            if keep {
                out.push(view(&r, now, None));
            }
            if out.len() == f.limit {
                let more = i + 1 < count || page.next.is_some();
                return Ok(Listed {
                    sessions: out,
                    next_cursor: more.then(|| encode_cursor(&key)),
                });
            }
        }
        match page.next {
            Some(n) => start = Some(n),
            None => {
                return Ok(Listed {
                    sessions: out,
                    next_cursor: None,
                });
            }
        }
    }
    Ok(Listed {
        sessions: out,
        next_cursor: start.map(|k| encode_cursor(&k)),
    })
}

// ---------------------------------------------------------------- users

/// The lookup's answer, logged with the key that asked (an audit trail of
/// who looked whom up; the user by id only).
fn looked_up(caller: &Integrator, by: &str, user: Option<User>) -> Result<UserObject> {
    let found = user.as_ref().map(|u| u.id.to_string());
    info!(key_id = %caller.key_id, by, user = ?found, "user lookup");
    user.map(|u| UserObject::from(&u))
        .ok_or(Error::NotFound("No such user"))
}

/// `GET /users/{id}`.
pub async fn user_by_id(app: &App, caller: &Integrator, id: Option<&str>) -> Result<UserObject> {
    let id = UserId::parse(id.unwrap_or("")).map_err(|_| Error::field("id", "must be a user id (usr_…)"))?;
    let user: Option<User> = app.db.get(&user_key(&id), app.now()).await?;
    looked_up(caller, "id", user)
}

/// `GET /users?phone_number=+…`: E.164 only, no guessing.
pub async fn user_by_phone(app: &App, caller: &Integrator, phone: Option<&str>) -> Result<UserObject> {
    let raw = crate::auth::required(phone, "phone_number")?;
    // E.164 only: no national formats, whatever DEFAULT_REGION says.
    let phone = crate::phone::PhoneNumber::parse_field(raw, "phone_number", None, |n| app.settings.is_test_number(n))?;
    let user = app.db.user_by_phone(phone.e164(), app.now()).await?;
    looked_up(caller, "phone", user)
}

// ---------------------------------------------------------------- step-up

/// `POST /step-up/consume`.
#[derive(Debug, Serialize)]
pub struct Consumed {
    pub user: UserObject,
    pub scope: String,
    pub issued_at: String,
}

/// Checks a user's stepUpToken once: the user and the scope the PIN
/// allowed; 403 `TOKEN_ALREADY_USED` the second time, 403 `INVALID_TOKEN`
/// for a bad or expired one or one whose session has ended.
pub async fn consume_step_up(app: &App, caller: &Integrator, token: Option<&str>) -> Result<Consumed> {
    let now = app.now();
    let token = crate::auth::required(token, "token")?;
    let claims: Claims<StepUpBody> = app.keys.verify(TokenKind::StepUp, token, now)?;
    let uid = UserId::parse(&claims.sub).map_err(|_| Error::invalid_flow_token("Invalid step-up token"))?;
    let found = app
        .db
        .batch_get(
            &[
                jti_key(&claims.jti),
                user_key(&uid),
                session_key(&uid, &claims.body.sid),
            ],
            now,
        )
        .await?;
    let mut it = found.into_iter();
    if it.next().flatten().is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let user: Option<User> = it.next().flatten().map(from_item).transpose()?;
    let session: Option<Session> = it.next().flatten().map(from_item).transpose()?;
    let (Some(user), Some(session)) = (user, session) else {
        return Err(Error::invalid_flow_token("This step-up token no longer stands"));
    };
    if !session.valid_for(&user) {
        return Err(Error::invalid_flow_token("This step-up token no longer stands"));
    }
    let mut used = Item::new();
    used.insert(EXPIRES_AT.into(), Value::from(claims.exp));
    used.insert("consumed_by".into(), Value::String(caller.key_id.clone()));
    app.db
        .put(to_item(&jti_key(&claims.jti), &used)?, Some(Cond::absent_at(now)))
        .await
        .map_err(|e| match e {
            TableError::ConditionFailed => Error::TokenAlreadyUsed,
            other => other.into(),
        })?;
    info!(key_id = %caller.key_id, user = %user.id, scope = %claims.body.scope, "step-up consumed");
    Ok(Consumed {
        user: UserObject::from(&user),
        scope: claims.body.scope,
        issued_at: fmt_time(claims.iat),
    })
}
