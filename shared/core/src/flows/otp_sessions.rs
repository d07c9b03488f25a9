//! `GET /api/v1/otp/sessions` (API key, scope `otp`): the key's own
//! integrator sessions, newest first, filtered, with a cursor to the next
//! page. Never a code or a hash. One call reads at most 10 store pages; a
//! listing cut short there still returns a cursor.

use serde::Serialize;
use serde_json::Value;

use crate::App;
use crate::app::Needs;
use crate::base::crypto::{b64url, b64url_decode};
use crate::base::error::{Error, FieldErrors, Result};
use crate::model::integrator::{IChannel, OtpSessionRecord, Status};
use crate::model::keys::integrator_sessions_index_pk;
use crate::model::records::{from_item, is_live};
use crate::model::table::{GSI1, GSI1PK, GSI1SK, Item, PK, Query, SK};
use crate::services::apikeys::Integrator;
use crate::services::integrator::{OtpSessionView, view};

pub const NEEDS: Needs = Needs {
    store: true,
    api_key_pepper: true,
    ..Needs::NOTHING
};

/// The request, checked: the listing's filters.
#[derive(Debug, Default)]
pub struct Request {
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

impl Request {
    /// The filters from the query parameters (`get(name)`): `status`,
    /// `channel`, `sandbox`, `from`, `to`, `limit` (1–100, default 20) and
    /// `cursor`; every bad one is named in one 422.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self> {
        parse_filter(get)
    }
}

/// Builds the filters from query parameters (`get(name)`).
fn parse_filter<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Request> {
    let mut bad = FieldErrors::new();
    let mut f = Request {
        limit: 20,
        ..Request::default()
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
    pub sessions: Vec<OtpSessionView>,
    pub next_cursor: Option<String>,
}

fn encode_cursor(item: &Item) -> String {
    b64url(Value::Object(item.clone()).to_string().as_bytes())
}

fn decode_cursor(key_id: &str, s: &str) -> Result<Item> {
    let bad = || Error::field("cursor", "is not a cursor of this listing");
    let bytes = b64url_decode(s).ok_or_else(bad)?;
    let item: Item = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    // A cursor only continues the caller's own listing.
    if item.get(GSI1PK).and_then(Value::as_str) != Some(integrator_sessions_index_pk(key_id).as_str()) {
        return Err(bad());
    }
    Ok(item)
}

/// The key attributes of a listed item (what a cursor holds).
fn cursor_key(item: &Item) -> Item {
    [PK, SK, GSI1PK, GSI1SK]
        .iter()
        .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

/// `GET /otp/sessions`: the caller's own sessions, newest first, filtered,
/// with a cursor to the next page. Never a code or a hash. One call reads
/// at most 10 store pages; a listing cut short there still returns a cursor.
pub async fn run(app: &App, caller: &Integrator, f: Request) -> Result<Listed> {
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
                pk: integrator_sessions_index_pk(&caller.key_id),
                sk_prefix: None,
                forward: false,
                limit: 50,
                start: start.take(),
            })
            .await?;
        let count = page.items.len();
        for (i, item) in page.items.into_iter().enumerate() {
            let key = cursor_key(&item);
            if !is_live(&item, now) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn query<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    }

    #[test]
    fn times_are_epoch_seconds_dates_or_date_times() {
        assert_eq!(parse_time("86400", "from").ok(), Some(86_400));
        assert_eq!(parse_time("1970-01-02", "from").ok(), Some(86_400));
        assert_eq!(parse_time("1970-01-02T00:00:01Z", "from").ok(), Some(86_401));
        assert!(parse_time("yesterday", "from").is_err());
    }

    #[test]
    fn every_bad_filter_is_named() {
        let pairs = [("status", "DONE"), ("limit", "0"), ("channel", "fax")];
        match Request::parse(query(&pairs)).err() {
            Some(Error::Validation(m)) => assert_eq!(m.into_keys().collect::<Vec<_>>(), ["channel", "limit", "status"]),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_cursor_of_another_key_is_refused() {
        let t = testing::app();
        let mut item = Item::new();
        item.insert(GSI1PK.into(), Value::from(integrator_sessions_index_pk("key_other")));
        let cursor = encode_cursor(&item);
        let pairs = [("cursor", cursor.as_str())];
        let req = Request::parse(query(&pairs)).unwrap();
        let e = run(&t.app, &testing::integrator(), req).await.err().map(|e| e.code());
        assert_eq!(e, Some("VALIDATION_ERROR"));
    }
}
