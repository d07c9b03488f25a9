//! `Idempotency-Key` for code sends: a repeat within 10 minutes gets the
//! first response back instead of a second send (mobile retries on flaky
//! networks must neither double-send nor burn the budget).
//!
//! The key is claimed with a conditional put before any work, so two
//! concurrent requests with one key cannot both send; the second waits for
//! nothing and gets 409 until the first completes. Only successful responses
//! are kept: a failed request releases the key so the client can retry.

use serde_json::Value;

use crate::App;
use crate::base::crypto::sha256;
use crate::base::error::{Error, Result};
use crate::model::keys;
use crate::model::table::{Cond, EXPIRES_AT, Item, Key, TableError, Update};

/// How long a key and its response are kept.
pub const TTL: i64 = 600;

/// What a claimed key means for the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use: do the work, then [`complete`] or [`release`].
    Fresh(Key),
    /// A repeat of a completed request: its status and body.
    Replay { status: u16, body: String },
}

/// Claims `idempotency_key` for a request to `scope` whose body hashes to `request`.
pub async fn claim(app: &App, scope: &str, idempotency_key: &str, request: &[u8]) -> Result<Claim> {
    let k = idempotency_key.trim();
    if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::field(
            "Idempotency-Key",
            "must be 1–255 visible ASCII characters",
        ));
    }
    let now = app.now();
    let key = keys::idempotency_key(scope, k);
    let request_hash = hex::encode(sha256(request));
    let mut item = Item::new();
    item.insert("pk".into(), Value::String(key.pk.clone()));
    item.insert("sk".into(), Value::String(key.sk.clone()));
    item.insert("state".into(), Value::from("pending"));
    item.insert("request_hash".into(), Value::String(request_hash.clone()));
    item.insert(EXPIRES_AT.into(), Value::from(now + TTL));
    match app.db.put(item, Some(Cond::absent_at(now))).await {
        Ok(()) => return Ok(Claim::Fresh(key)),
        Err(TableError::ConditionFailed) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(stored) = app.db.get_item(&key, now).await? else {
        return Err(Error::Conflict("A request with this Idempotency-Key is in progress"));
    };
    if stored.get("request_hash").and_then(Value::as_str) != Some(request_hash.as_str()) {
        return Err(Error::field(
            "Idempotency-Key",
            "was already used for a different request",
        ));
    }
    match (
        stored.get("state").and_then(Value::as_str),
        stored.get("status").and_then(Value::as_u64),
    ) {
        (Some("done"), Some(status)) => Ok(Claim::Replay {
            status: status as u16,
            body: stored
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }),
        _ => Err(Error::Conflict("A request with this Idempotency-Key is in progress")),
    }
}

/// The body kept for repeats: the response without its sandbox codes
/// (a plaintext code is never stored, not even in sandbox).
fn storable(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(mut v) => {
            if let Some(data) = v.get_mut("data").and_then(Value::as_object_mut) {
                for k in ["sandboxOtp", "sandbox_otp", "sandbox_otps"] {
                    data.remove(k);
                }
            }
            v.to_string()
        }
        Err(_) => body.to_owned(),
    }
}

/// Stores the response of a claimed request for its repeats.
pub async fn complete(app: &App, key: &Key, status: u16, body: &str) {
    let body = storable(body);
    let ops = vec![
        Update::set("state", "done"),
        Update::set("status", status),
        Update::set("body", body.as_str()),
    ];
    if let Err(e) = app.db.update(key, ops, Some(Cond::eq("state", "pending"))).await {
        tracing::warn!(error = %e, "could not store an idempotent response");
    }
}

/// Gives a claimed key back (the request failed; a retry may run it).
pub async fn release(app: &App, key: &Key) {
    if let Err(e) = app.db.delete(key, Some(Cond::eq("state", "pending"))).await {
        tracing::warn!(error = %e, "could not release an idempotency key");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_replay_keeps_the_response_but_not_its_sandbox_codes() {
        let body = r#"{"success":true,"data":{"tempToken":"t","sandboxOtp":"123456","sandbox_otps":{"sms":"1"},"sandbox_otp":"9"}}"#;
        let kept: Value = serde_json::from_str(&storable(body)).unwrap_or_default();
        assert_eq!(kept["data"], serde_json::json!({"tempToken": "t"}));
        assert_eq!(kept["success"], true);
    }
}
