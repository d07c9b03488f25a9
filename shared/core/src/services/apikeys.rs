//! Integrator API keys (docs/DESIGN.md §6): `nmb_live_…` / `nmb_test_…`,
//! 190 random bits in base62, stored only as HMAC-SHA256 under the API-key
//! pepper (the item: [`crate::model::keys::api_key_key`]).
//!
//! A request's key is looked up by its keyed hash: the key is never
//! compared byte by byte, and a wrong, revoked, malformed or missing key
//! costs the same HMAC and the same one read before its 401, so timing
//! tells nothing. Test keys (`nmb_test_`) only ever run in sandbox mode.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::info;

use crate::App;
use crate::base::error::{Error, Result};
use crate::base::ids::random_base62;
use crate::base::rates::Rule;
use crate::model::keys::{API_KEYS_INDEX_PK, api_key_key};
use crate::model::records::{ApiKeyRecord, from_item, to_item};
use crate::model::table::{Cond, GSI1, GSI1PK, GSI1SK, Query, Update, Write};
use crate::ports::table::{Tx, TxError};
use crate::services::limits::{Counter, refused};

pub const LIVE_PREFIX: &str = "nmb_live_";
pub const TEST_PREFIX: &str = "nmb_test_";
/// The GSI partition that lists every key (admin command).
pub const KEYS_INDEX_PK: &str = API_KEYS_INDEX_PK;

/// What a key may call.
pub const SCOPES: [&str; 4] = ["otp", "users:read", "invites", "step_up"];

/// A freshly created key: shown once, then only its hash exists.
pub struct NewKey {
    pub key: SecretString,
    pub record: ApiKeyRecord,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

fn pepper(app: &App) -> Result<std::sync::Arc<crate::base::otp::Pepper>> {
    Ok(app.api_key_pepper()?.get())
}

/// Parses a scope list (`otp,users:read`); empty means every scope.
pub fn parse_scopes(list: &[String]) -> Result<Vec<String>> {
    if list.is_empty() {
        return Ok(SCOPES.iter().map(|s| (*s).to_owned()).collect());
    }
    let mut out = Vec::new();
    for s in list {
        let s = s.trim();
        if !SCOPES.contains(&s) {
            return Err(Error::field(
                "scopes",
                format!("unknown scope {s:?}; known: {}", SCOPES.join(", ")),
            ));
        }
        if !out.iter().any(|o: &String| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// Creates a key named `name` with `scopes` (`test`: a sandbox-only key).
pub async fn create(app: &App, name: &str, scopes: &[String], test: bool) -> Result<NewKey> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || crate::base::text::has_unsafe_chars(name) {
        return Err(Error::field("name", "must be 1–100 printable characters"));
    }
    let scopes = parse_scopes(scopes)?;
    let secret = format!("{}{}", random_base62()?, &random_base62()?[..10]);
    let key = format!("{}{secret}", if test { TEST_PREFIX } else { LIVE_PREFIX });
    let hash = pepper(app)?.keyed_hash(&key);
    let now = app.now();
    let record = ApiKeyRecord {
        key_id: format!("key_{}", random_base62()?),
        name: name.to_owned(),
        scopes,
        test,
        created_at: now,
        last_used_at: None,
        revoked_at: None,
        hash: hash.clone(),
    };
    let mut item = to_item(&api_key_key(&hash), &record)?;
    item.insert(GSI1PK.into(), Value::from(KEYS_INDEX_PK));
    item.insert(GSI1SK.into(), Value::from(format!("{now:012}#{}", record.key_id)));
    app.db.put(item, Some(Cond::NotExists)).await?;
    info!(key_id = %record.key_id, test, "API key created");
    Ok(NewKey {
        key: SecretString::from(key),
        record,
    })
}

/// Every key, newest first (admin command).
pub async fn list(app: &App) -> Result<Vec<ApiKeyRecord>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = app
            .db
            .query(Query {
                index: Some(GSI1),
                pk: KEYS_INDEX_PK.into(),
                sk_prefix: None,
                forward: false,
                limit: 100,
                start,
            })
            .await?;
        for item in page.items {
            out.push(from_item::<ApiKeyRecord>(item)?);
        }
        match page.next {
            Some(n) => start = Some(n),
            None => break,
        }
    }
    Ok(out)
}

/// Revokes the key `key_id`; `NOT_FOUND` when there is none.
pub async fn revoke(app: &App, key_id: &str) -> Result<ApiKeyRecord> {
    let found = list(app).await?.into_iter().find(|k| k.key_id == key_id);
    let mut record = found.ok_or(Error::NotFound("No such API key"))?;
    let now = app.now();
    app.db
        .update(
            &api_key_key(&record.hash),
            vec![Update::set("revoked_at", now)],
            Some(Cond::Exists),
        )
        .await?;
    record.revoked_at = Some(now);
    info!(key_id, "API key revoked");
    Ok(record)
}

/// A request's caller: a live key.
#[derive(Clone, Debug)]
pub struct Integrator {
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub test: bool,
}

impl Integrator {
    /// `FORBIDDEN`-style refusal unless the key has `scope`.
    pub fn require(&self, scope: &str) -> Result<()> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(Error::InsufficientScope(scope_static(scope)))
        }
    }
}

fn scope_static(scope: &str) -> &'static str {
    SCOPES.iter().find(|s| **s == scope).copied().unwrap_or("unknown")
}

/// Identifies the integrator of `Authorization: Bearer nmb_…`: 401
/// `UNAUTHORIZED` for a wrong, revoked, malformed or missing key (same cost
/// in each case), 403 `INSUFFICIENT_SCOPE` without `scope`, 429 beyond the
/// key's request rate.
pub async fn authenticate(app: &App, bearer: Option<&str>, scope: &str) -> Result<Integrator> {
    let now = app.now();
    let presented = bearer.unwrap_or("");
    let well_formed = (presented.starts_with(LIVE_PREFIX) || presented.starts_with(TEST_PREFIX))
        && presented.len() <= 64
        && presented.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    // The HMAC and the read happen whatever was presented.
    let hash = pepper(app)?.keyed_hash(presented);
    let found: Option<ApiKeyRecord> = app.db.get(&api_key_key(&hash), now).await?;
    let record = match found {
        Some(r) if well_formed && r.revoked_at.is_none() => r,
        _ => return Err(Error::Unauthorized),
    };
    let caller = Integrator {
        key_id: record.key_id.clone(),
        name: record.name.clone(),
        scopes: record.scopes.clone(),
        test: record.test,
    };
    caller.require(scope)?;
    // The request counter and (at most once a minute) the key's last use,
    // in one round trip.
    #[derive(Clone, Copy)]
    enum Refused {
        OverRate,
        KeyGone,
    }
    let mut tx = Tx::tagged();
    let counter = app.settings.limits.enabled.then(|| {
        Counter::new(
            Rule::ApiKeyRequests,
            &record.key_id,
            app.settings.limits.key_requests,
            now,
        )
    });
    if let Some(c) = &counter {
        tx.add_or(c.increment(1, 60), Refused::OverRate);
    }
    if record.last_used_at.is_none_or(|t| now - t >= 60) {
        // The key's item is gone (deleted meanwhile): no such key.
        tx.add_or(
            Write::Update {
                key: api_key_key(&hash),
                ops: vec![Update::set("last_used_at", now)],
                cond: Some(Cond::Exists),
            },
            Refused::KeyGone,
        );
    }
    if !tx.is_empty() {
        match app.db.commit(tx).await {
            Ok(()) => {}
            Err(TxError::Refused(Refused::OverRate)) => {
                let c = counter.as_ref().ok_or_else(|| Error::internal("counter"))?;
                return Err(refused(app, c, "-", now));
            }
            Err(TxError::Refused(Refused::KeyGone)) => return Err(Error::Unauthorized),
            Err(TxError::Store(e)) => return Err(e.into()),
        }
    }
    Ok(caller)
}

/// The per-key send budget counter (in the send's own transaction).
pub fn send_counter(app: &App, key_id: &str, now: i64) -> Counter {
    Counter::new(Rule::ApiKeySends, key_id, app.settings.limits.key_sends, now)
}

/// Exposes a new key for printing once (admin command, local mode).
pub fn reveal(k: &NewKey) -> &str {
    k.key.expose_secret()
}
