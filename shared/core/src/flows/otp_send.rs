//! `POST /api/v1/otp/send` (API key, scope `otp`): an integrator OTP
//! session with a code per channel (email, SMS, WhatsApp), completed by
//! `verification` (ALL, ANY or a list). The session and its send counters
//! are stored before any code goes out (a refusal sends nothing); a
//! session no channel reached is removed.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::App;
use crate::app::Needs;
use crate::base::config::SenderMode;
use crate::base::error::{Error, FieldErrors, Result};
use crate::base::ids::random_base62;
use crate::base::otp::OtpCode;
use crate::base::values::Email;
use crate::model::integrator::{ChannelState, IChannel, OtpSessionRecord, Status, Strategy};
use crate::model::keys::integrator_session_key;
use crate::model::table::Cond;
use crate::ports::table::Tx;
use crate::services::apikeys::Integrator;
use crate::services::integrator::{
    RETENTION, SessionSent, code_hash, deliver, integrator_guard, parse_channel_list, parse_metadata, save, sent_view,
};
use crate::services::limits::commit_guarded;
use crate::services::numbers::{country_served, parse_phone};

pub const NEEDS: Needs = Needs {
    store: true,
    otp_pepper: true,
    api_key_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

/// The request, checked: every bad field of the body is named in one 422.
#[derive(Debug)]
pub struct Request {
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

impl Request {
    /// Parses the body; every bad field is named in one 422.
    pub fn parse(app: &App, body: &Map<String, Value>) -> Result<Self> {
        parse_send(app, body)
    }
}

fn parse_send(app: &App, body: &Map<String, Value>) -> Result<Request> {
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
                Ok(p) if country_served(app, &p) => {
                    recipients.insert(*c, p.e164().to_owned());
                }
                Ok(_) => {
                    bad.insert(field, "numbers of this country are not served".into());
                }
                Err(Error::Validation(m)) => bad.extend(m),
                Err(e) => return Err(e),
            },
            Some(r) => match Email::parse(Some(r)) {
                Ok(e) => {
                    recipients.insert(*c, e.into_string());
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
    Ok(Request {
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

/// `POST /otp/send`: a session with a code per channel.
pub async fn run(app: &App, caller: &Integrator, req: Request, locale: &str) -> Result<SessionSent> {
    let now = app.now();
    // A stage without senders can only sandbox: the codes come back.
    let sandbox = req.sandbox || caller.test || app.settings.delivery.senders == SenderMode::None;
    let session_id = format!("ots_{}", random_base62()?);
    let mut codes = BTreeMap::new();
    let mut channels = BTreeMap::new();
    for (c, to) in &req.recipients {
        let code = if c.is_phone() {
            match app.settings.test_numbers.get(to.as_str()) {
                Some(fixed) if req.otp_length == 6 => OtpCode::fixed(fixed),
                _ => OtpCode::generate(req.otp_length)?,
            }
        } else {
            OtpCode::generate(req.otp_length)?
        };
        channels.insert(
            *c,
            ChannelState {
                recipient: to.clone(),
                code_hash: code_hash(app, &session_id, *c, &code)?,
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
        let mut tx = Tx::tagged();
        tx.add(save(&record, None)?).append(guard.tx());
        if commit_guarded(app, tx, &guard, &country, now).await? {
            break;
        }
        info!(key_id = %caller.key_id, "a number's failure budget is nearly spent: one attempt");
        record.max_attempts = 1;
        guard = guard.without_room();
    }
    let delivered = deliver(app, sandbox, &codes, ttl, locale).await?;
    if !delivered.values().any(|d| *d) {
        // Nothing reached anyone: leave nothing behind.
        if let Err(e) = app
            .db
            .delete(&integrator_session_key(&session_id), Some(Cond::eq("version", 0)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn every_bad_field_is_named_in_one_422() {
        let t = testing::app();
        let b = body(json!({
            "channels": ["sms", "fax"],
            "recipients": {},
            "config": {"otp_length": 12},
            "sandbox_mode": "yes"
        }));
        match Request::parse(&t.app, &b).err() {
            Some(Error::Validation(m)) => {
                let keys: Vec<_> = m.into_keys().collect();
                for k in ["channels", "recipients.sms", "config.otp_length", "sandbox_mode"] {
                    assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn metadata_dynamodb_cannot_store_is_refused_before_anything_is_sent() {
        let t = testing::app();
        let b = body(json!({"channels": ["sms"], "recipients": {"sms": "+255745051250"}, "metadata": {"x": 1e200}}));
        assert!(matches!(Request::parse(&t.app, &b), Err(Error::Validation(m)) if m.contains_key("metadata")));
    }

    #[tokio::test]
    async fn a_sandbox_session_keeps_its_codes_in_the_answer_and_sends_nothing() {
        let t = testing::app();
        let caller = testing::integrator();
        let b = body(json!({"channels": ["sms"], "recipients": {"sms": "+255745051250"}, "sandbox_mode": true}));
        let sent = run(&t.app, &caller, Request::parse(&t.app, &b).unwrap(), "en")
            .await
            .unwrap();
        assert!(sent.sandbox && sent.sandbox_otps.is_some_and(|c| c.contains_key(&IChannel::Sms)));
        assert!(t.sender.messages().is_empty());
    }
}
