//! Where every item sits in the one table: each item kind's `pk` and `sk`
//! (and its index attributes), in one place. docs/DESIGN.md §8 describes
//! the layout and why it is so.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | user | `USER#<id>` | `PROFILE` |
//! | phone → user (unique) | `PHONE#<e164>` | `PHONE` |
//! | OTP session (latest per purpose and subject) | `OTP#<purpose>#<subject>` | `OTP` |
//! | used token id | `JTI#<jti>` | `JTI` |
//! | session (one device's refresh family) | `USER#<id>` | `SESSION#<sid>` |
//! | refresh-token hash | `RT#<sha256>` | `RT` |
//! | credentials (password and PIN hashes) | `USER#<id>` | `CRED` |
//! | known device | `USER#<id>` | `DEVICE#<sha256(deviceId)>` |
//! | lockout slots (password, PIN) | `LOCK#<kind>#<user id>` | `LOCK` |
//! | OAuth link nonce (single use) | `NONCE#<sha256(nonce)>` | `NONCE` |
//! | username → user (unique) | `USERNAME#<lowercase>` | `USERNAME` |
//! | email → user (unique) | `EMAIL#<lowercase>` | `EMAIL` |
//! | OAuth subject → user (unique) | `OAUTH#<provider>#<sub>` | `OAUTH` |
//! | rate counter (one per rule, subject, window) | `RATE#<rule>#<subject>#<window start>` | `RATE` |
//! | API key (by its keyed hash) | `APIKEY#<hmac>` | `APIKEY` |
//! | Idempotency-Key | `IDEM#<scope>#<sha256(key)>` | `IDEM` |
//! | integrator OTP session | `OTPS#<id>` | `OTPS` |
//! | invite | `INVITE#<e164>` | `<key id>` |
//!
//! The one global index `gsi1` (`gsi1pk` / `gsi1sk`) lists API keys
//! (`APIKEYS` / `<created_at>#<key id>`) and each key's integrator
//! sessions (`OTPS#KEY#<key id>` / `<created_at>#<id>`).

use crate::base::crypto::sha256;
use crate::base::ids::{SessionId, UserId};
use crate::model::table::Key;

fn hashed(s: &str) -> String {
    hex::encode(sha256(s.as_bytes()))
}

pub fn user_key(id: &UserId) -> Key {
    Key::new(format!("USER#{id}"), "PROFILE")
}
/// The partition of a user's items (profile, sessions, credentials, devices).
pub fn user_partition(id: &UserId) -> String {
    format!("USER#{id}")
}
pub fn phone_key(e164: &str) -> Key {
    Key::new(format!("PHONE#{e164}"), "PHONE")
}
pub fn otp_key(purpose: &str, subject: &str) -> Key {
    Key::new(format!("OTP#{purpose}#{subject}"), "OTP")
}
pub fn jti_key(jti: &str) -> Key {
    Key::new(format!("JTI#{jti}"), "JTI")
}
pub fn session_key(user: &UserId, sid: &SessionId) -> Key {
    Key::new(user_partition(user), format!("{SESSION_PREFIX}{sid}"))
}
/// The sort-key prefix of a user's sessions.
pub const SESSION_PREFIX: &str = "SESSION#";
pub fn refresh_key(hash: &str) -> Key {
    Key::new(format!("RT#{hash}"), "RT")
}
pub fn cred_key(user: &UserId) -> Key {
    Key::new(user_partition(user), "CRED")
}
pub fn device_key(user: &UserId, device_id: &str) -> Key {
    Key::new(user_partition(user), format!("DEVICE#{}", hashed(device_id)))
}
pub fn lock_key(kind: &str, user: &UserId) -> Key {
    Key::new(format!("LOCK#{kind}#{user}"), "LOCK")
}
pub fn username_key(lowercase: &str) -> Key {
    Key::new(format!("USERNAME#{lowercase}"), "USERNAME")
}
pub fn email_key(lowercase: &str) -> Key {
    Key::new(format!("EMAIL#{lowercase}"), "EMAIL")
}
pub fn oauth_key(provider: &str, sub: &str) -> Key {
    Key::new(format!("OAUTH#{provider}#{sub}"), "OAUTH")
}
/// A nonce issued for linking a provider, by its hash (the nonce itself
/// goes to the provider and comes back inside the idToken).
pub fn nonce_key(nonce: &str) -> Key {
    Key::new(format!("NONCE#{}", hashed(nonce)), "NONCE")
}
/// The counter of rule `rule` for `subject` in the window starting at `start`.
pub fn rate_key(rule: &str, subject: &str, start: i64) -> Key {
    Key::new(format!("RATE#{rule}#{subject}#{start}"), "RATE")
}
/// An API key's item, by its keyed hash.
pub fn api_key_key(hash: &str) -> Key {
    Key::new(format!("APIKEY#{hash}"), "APIKEY")
}
/// The index partition that lists every API key.
pub const API_KEYS_INDEX_PK: &str = "APIKEYS";
/// An Idempotency-Key of `scope`, by its hash.
pub fn idempotency_key(scope: &str, idempotency_key: &str) -> Key {
    Key::new(format!("IDEM#{scope}#{}", hashed(idempotency_key)), "IDEM")
}
/// An integrator OTP session.
pub fn integrator_session_key(id: &str) -> Key {
    Key::new(format!("OTPS#{id}"), "OTPS")
}
/// The index partition of one API key's integrator sessions.
pub fn integrator_sessions_index_pk(key_id: &str) -> String {
    format!("OTPS#KEY#{key_id}")
}
/// The partition of a number's invites (one item per inviting key).
pub fn invite_partition(e164: &str) -> String {
    format!("INVITE#{e164}")
}
/// The invite of `key_id` to `e164`.
pub fn invite_key(e164: &str, key_id: &str) -> Key {
    Key::new(invite_partition(e164), key_id)
}
