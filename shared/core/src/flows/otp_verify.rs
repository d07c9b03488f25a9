//! `POST /api/v1/otp/verify` (API key, scope `otp`): `{token, otps:
//! {channel: code}}`. Each submitted code is checked against its channel;
//! the session goes PENDING → PARTIAL → VERIFIED per its strategy, or
//! FAILED / EXPIRED. With `add_contact`, the verified phone becomes a user.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::crypto::ct_eq;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::ids::UserId;
use crate::base::otp::OtpCode;
use crate::model::integrator::{IChannel, OtpSessionRecord, Status};
use crate::model::keys::user_key;
use crate::model::records::User;
use crate::model::table::{EXPIRES_AT, Update, Write};
use crate::ports::events::{Event, EventType};
use crate::ports::table::{Db, Tx, TxError};
use crate::services::apikeys::Integrator;
use crate::services::events::emit;
use crate::services::integrator::{OtpSessionView, VERSION_RETRIES, code_hash, load, save, view};
use crate::services::limits::{failure_counter, limited};
use crate::services::numbers::parse_phone;

pub const NEEDS: Needs = Needs {
    store: true,
    otp_pepper: true,
    api_key_pepper: true,
    events: true,
    ..Needs::NOTHING
};

/// What `/otp/verify` answers: the session, and what each submitted code did.
#[derive(Debug, Serialize)]
pub struct VerifyOutcome {
    #[serde(flatten)]
    pub session: OtpSessionView,
    /// Per submitted channel: `VERIFIED`, `INVALID`, `ALREADY_VERIFIED`,
    /// `NOT_IN_SESSION`, or `SKIPPED` (the session was already over).
    pub results: BTreeMap<String, &'static str>,
}

/// The request, checked: the session token and `otps`, channel → code
/// (each of the session's length, checked against it later).
pub struct Request {
    pub token: String,
    pub otps: BTreeMap<String, String>,
}

impl Request {
    pub fn parse(token: Option<&str>, otps: Option<&Value>) -> Result<Self> {
        let (token, otps) = (required(token, "token"), parse_otps(otps)).all()?;
        Ok(Self {
            token: token.to_owned(),
            otps,
        })
    }
}

fn parse_otps(v: Option<&Value>) -> Result<BTreeMap<String, String>> {
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
pub async fn run(app: &App, caller: &Integrator, req: Request) -> Result<VerifyOutcome> {
    let otps = req.otps;
    let token = Some(req.token.as_str());
    for _ in 0..VERSION_RETRIES {
        let now = app.now();
        let record = load(app, caller, token).await?;
        let (results, compare) = plan(&record, &otps, now);
        if compare.is_empty() {
            let user = match &record.user_id {
                Some(id) => app.db.get::<User>(&user_key(id), now).await?,
                None => None,
            };
            return Ok(VerifyOutcome {
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
        let mut tx = Tx::tagged();
        // Another verification wrote meanwhile: read it again.
        tx.add_or(save(&taken, Some(record.version))?, ())
            .add_all(failure_writes(app, &taken, &compare, 1, now));
        match app.db.commit(tx).await {
            Ok(()) => {}
            Err(TxError::Refused(())) => continue,
            Err(TxError::Store(e)) => return Err(e.into()),
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
                ops: vec![Update::add("count", n), Update::set(EXPIRES_AT, c.window_end + 60)],
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
) -> Result<VerifyOutcome> {
    let mut right: Vec<(String, IChannel)> = Vec::new();
    for (name, channel) in compare {
        let matches = otps.get(name).is_some_and(|code| {
            OtpCode::parse(code, taken.otp_length, "otps").is_ok_and(|code| {
                code_hash(app, &taken.session_id, *channel, &code).is_ok_and(|hash| {
                    taken
                        .channels
                        .get(channel)
                        .is_some_and(|s| ct_eq(hash.as_bytes(), s.code_hash.as_bytes()))
                })
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
        return Ok(VerifyOutcome {
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
        let mut stored = save(&record, Some(read_version))?;
        let mut contact = Vec::new();
        let mut user = None;
        let mut new_user = None;
        if completes && record.add_contact && !record.sandbox {
            let (w, u, created) = contact_writes(app, &record, now).await?;
            record.user_id = u.as_ref().map(|u| u.id.clone());
            if let (Some(id), Write::Put { item, .. }) = (&record.user_id, &mut stored) {
                // The stored record names the contact too.
                item.insert("user_id".into(), Value::String(id.to_string()));
            }
            contact = w;
            user = u;
            new_user = created.then(|| user.clone()).flatten();
        }
        // Another verification wrote meanwhile, or the contact's number was
        // registered: apply the right codes again on a fresh read.
        let mut tx = Tx::tagged();
        tx.add_or(stored, ());
        for w in contact {
            tx.add_or(w, ());
        }
        tx.add_all(failure_writes(app, &record, &given_back, -1, now));
        match app.db.commit(tx).await {
            Ok(()) => {}
            Err(TxError::Refused(())) => {
                record = load(app, caller, token).await?;
                continue;
            }
            Err(TxError::Store(e)) => return Err(e.into()),
        }
        for (name, _) in &right {
            results.insert(name.clone(), "VERIFIED");
        }
        if let Some(u) = &new_user {
            let data = json!({"flow": "integrator", "key_id": caller.key_id});
            emit(app, Event::new(EventType::UserRegistered, Some(u), data, now)).await?;
        }
        if completes && before != Status::Verified {
            info!(key_id = %caller.key_id, session = %record.session_id, "integrator session verified");
            app.metrics.emit(crate::ports::metrics::counter(
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
            emit(app, Event::new(EventType::OtpVerified, user.as_ref(), data, now)).await?;
        }
        if user.is_none()
            && let Some(id) = &record.user_id
        {
            user = app.db.get::<User>(&user_key(id), now).await?;
        }
        return Ok(VerifyOutcome {
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
    Ok((Db::create_user_writes(&user, now)?.into(), Some(user), true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn otps_must_be_a_small_object_of_codes() {
        for bad in [
            json!([]),
            json!({}),
            json!({"a": 1}),
            json!({"a":"1","b":"2","c":"3","d":"4"}),
        ] {
            assert!(Request::parse(Some("ots_x"), Some(&bad)).is_err(), "{bad}");
        }
        assert!(Request::parse(Some("ots_x"), Some(&json!({"sms": "123456"}))).is_ok());
    }

    #[tokio::test]
    async fn an_unknown_session_is_not_found() {
        let t = testing::app();
        let req = Request::parse(Some("ots_nope"), Some(&json!({"sms": "123456"}))).unwrap();
        let e = run(&t.app, &testing::integrator(), req).await.err().map(|e| e.code());
        assert_eq!(e, Some("NOT_FOUND"));
    }
}
