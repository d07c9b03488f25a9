//! Integrator OTP sessions (docs/DESIGN.md §6): what sending, verifying,
//! resending and listing share. Every call is made with an API key
//! ([`crate::services::apikeys`]); fields are snake_case.
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

use serde::Serialize;
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::App;
use crate::base::crypto::ct_eq;
use crate::base::error::{Error, FieldErrors, Result};
use crate::base::fields::required;
use crate::base::otp::OtpCode;
use crate::base::time::fmt_time;
use crate::model::integrator::{IChannel, OtpSessionRecord, Status, Strategy};
use crate::model::keys::{integrator_session_key, integrator_sessions_index_pk};
use crate::model::records::{User, UserObject, to_item};
use crate::model::table::{Cond, GSI1PK, GSI1SK, Write};
use crate::ports::sender::OtpMessage;
use crate::services::apikeys::{Integrator, send_counter};
use crate::services::limits::{Guard, SendFrom, Use, limited, send_guard};

/// How long a session stays listable.
pub const RETENTION: i64 = 7 * 24 * 3600;
/// The largest `metadata`, serialised.
pub const MAX_METADATA: usize = 4096;
/// Optimistic-concurrency retries of a verification or resend.
pub const VERSION_RETRIES: usize = 4;

pub fn code_hash(app: &App, session_id: &str, channel: IChannel, code: &OtpCode) -> Result<String> {
    Ok(app.pepper()?.hash(&format!("{session_id}:{}", channel.as_str()), code))
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
pub struct OtpSessionView {
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

pub fn strategy_json(s: &Strategy) -> Value {
    match s {
        Strategy::All => json!("ALL"),
        Strategy::Any => json!("ANY"),
        Strategy::Channels(c) => json!(c),
    }
}

pub fn masked_recipient(channel: IChannel, r: &str) -> String {
    match channel {
        IChannel::Email => crate::base::mask::mask_email(r),
        _ => crate::base::mask::mask_phone(r),
    }
}

pub fn view(s: &OtpSessionRecord, now: i64, user: Option<&User>) -> OtpSessionView {
    OtpSessionView {
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

pub fn parse_channel_list(v: &Value, name: &str, bad: &mut FieldErrors) -> Vec<IChannel> {
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

/// What `/otp/send` and `/otp/resend` answer.
#[derive(Debug, Serialize)]
pub struct SessionSent {
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
pub async fn deliver(
    app: &App,
    sandbox: bool,
    codes: &BTreeMap<IChannel, (String, OtpCode)>,
    ttl: i64,
    locale: &str,
) -> Result<BTreeMap<IChannel, bool>> {
    if sandbox {
        return Ok(codes.keys().map(|c| (*c, true)).collect());
    }
    let sender = app.sender()?;
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
            let r = sender.send(&msg).await;
            if let Err(e) = &r {
                warn!(channel = c.as_str(), error = %e, "integrator delivery failed");
                app.metrics.emit(crate::ports::metrics::counter(
                    "DeliveryFailed",
                    &[("Channel", c.pipe().as_str())],
                    app.now(),
                ));
            }
            (*c, r.is_ok())
        }
    });
    Ok(futures_join(sends).await.into_iter().collect())
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
pub async fn integrator_guard(
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

pub fn sent_view(
    record: &OtpSessionRecord,
    codes: &BTreeMap<IChannel, (String, OtpCode)>,
    delivered: &BTreeMap<IChannel, bool>,
    now: i64,
) -> SessionSent {
    SessionSent {
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
pub async fn load(app: &App, caller: &Integrator, token: Option<&str>) -> Result<OtpSessionRecord> {
    let token = required(token, "token")?;
    if !token.starts_with("ots_") || token.len() > 40 || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(Error::NotFound("No such OTP session"));
    }
    let record: Option<OtpSessionRecord> = app.db.get(&integrator_session_key(token), app.now()).await?;
    match record {
        Some(r) if ct_eq(r.key_id.as_bytes(), caller.key_id.as_bytes()) => Ok(r),
        _ => Err(Error::NotFound("No such OTP session")),
    }
}

/// Writes `record` if the stored one is still at `read_version` (`None`:
/// if there is none yet).
pub fn save(record: &OtpSessionRecord, read_version: Option<u64>) -> Result<Write> {
    let mut item = to_item(&integrator_session_key(&record.session_id), record)?;
    item.insert(GSI1PK.into(), Value::from(integrator_sessions_index_pk(&record.key_id)));
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

/// The lookup's answer, logged with the key that asked (an audit trail of
/// who looked whom up; the user by id only).
pub fn looked_up(caller: &Integrator, by: &str, user: Option<User>) -> Result<UserObject> {
    let found = user.as_ref().map(|u| u.id.to_string());
    info!(key_id = %caller.key_id, by, user = ?found, "user lookup");
    user.map(|u| UserObject::from(&u))
        .ok_or(Error::NotFound("No such user"))
}
