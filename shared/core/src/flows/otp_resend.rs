//! `POST /api/v1/otp/resend` (API key, scope `otp`): new codes on
//! `channels` (default: every unverified one); the old codes of those
//! channels die. The cooldown and resend count of the end-user flow apply;
//! the expiry restarts. A channel the resend did not reach keeps its
//! previous code.

use std::collections::BTreeMap;

use serde_json::Value;
use tracing::warn;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, FieldErrors, Result};
use crate::base::otp::OtpCode;
use crate::model::integrator::{IChannel, Status};
use crate::ports::table::Tx;
use crate::services::apikeys::Integrator;
use crate::services::integrator::{
    SessionSent, code_hash, deliver, integrator_guard, load, parse_channel_list, save, sent_view,
};
use crate::services::limits::{Guarded, commit_guarded};

pub const NEEDS: Needs = Needs {
    store: true,
    otp_pepper: true,
    api_key_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

/// The request, checked: the session token and, when given, the channels
/// to send again (none: every unverified one).
pub struct Request {
    pub token: String,
    pub channels: Option<Vec<IChannel>>,
}

impl Request {
    pub fn parse(token: Option<&str>, channels: Option<&Value>) -> Result<Self> {
        let mut bad = FieldErrors::new();
        if token.is_none_or(|t| t.trim().is_empty()) {
            bad.insert("token".into(), "is required".into());
        }
        let channels = match channels {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_channel_list(v, "channels", &mut bad)),
        };
        if !bad.is_empty() {
            return Err(Error::Validation(bad));
        }
        Ok(Self {
            token: token.unwrap_or_default().to_owned(),
            channels,
        })
    }
}

/// New codes on the request's channels; the old codes of those channels
/// die.
pub async fn run(app: &App, caller: &Integrator, req: Request, locale: &str) -> Result<SessionSent> {
    let token = Some(req.token.as_str());
    let wanted = req.channels;
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
            _ => OtpCode::generate(record.otp_length)?,
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
        let hash = code_hash(app, &record.session_id, *c, code)?;
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
    let mut tx = Tx::tagged();
    tx.add_or(
        save(&record, Some(read_version))?,
        Guarded::Refusal(|| Error::Conflict("The session changed meanwhile; retry")),
    )
    .append(guard.tx());
    commit_guarded(app, tx, &guard, "-", now).await?;
    let delivered = deliver(app, record.sandbox, &codes, ttl, locale).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use serde_json::json;

    #[test]
    fn the_token_and_the_channels_are_named_in_one_422() {
        match Request::parse(None, Some(&json!(["fax"]))).err() {
            Some(Error::Validation(m)) => assert_eq!(m.into_keys().collect::<Vec<_>>(), ["channels", "token"]),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn another_key_s_session_is_not_found() {
        let t = testing::app();
        let req = Request::parse(Some("ots_unknown"), None).unwrap();
        let e = run(&t.app, &testing::integrator(), req, "en")
            .await
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("NOT_FOUND"));
    }
}
