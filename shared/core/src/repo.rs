//! Domain records and how they sit in the one table (SPEC §8).
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
//!
//! [`Db`] wraps the [`Table`] port: it (de)serialises records and hides
//! items whose `expires_at` has passed, on every read, because TTL deletion
//! is lazy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::ids::{SessionId, UserId};
use crate::table::{Cond, EXPIRES_AT, Item, Key, PK, SK, Table, Write};

pub fn user_key(id: &UserId) -> Key {
    Key::new(format!("USER#{id}"), "PROFILE")
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
    Key::new(format!("USER#{user}"), format!("SESSION#{sid}"))
}
pub fn refresh_key(hash: &str) -> Key {
    Key::new(format!("RT#{hash}"), "RT")
}
pub fn cred_key(user: &UserId) -> Key {
    Key::new(format!("USER#{user}"), "CRED")
}
pub fn device_key(user: &UserId, device_id: &str) -> Key {
    let h = hex::encode(crate::crypto::sha256(device_id.as_bytes()));
    Key::new(format!("USER#{user}"), format!("DEVICE#{h}"))
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
    let h = hex::encode(crate::crypto::sha256(nonce.as_bytes()));
    Key::new(format!("NONCE#{h}"), "NONCE")
}
/// The sort-key prefix of a user's sessions.
pub const SESSION_PREFIX: &str = "SESSION#";

/// The client platform of a sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Platform {
    Android,
    Ios,
    Web,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "ANDROID" => Ok(Platform::Android),
            "IOS" => Ok(Platform::Ios),
            "WEB" => Ok(Platform::Web),
            _ => Err(Error::field("platform", "must be ANDROID, IOS or WEB")),
        }
    }
}

/// A user. The phone number is the identity; everything else is optional.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: UserId,
    pub phone: String,
    pub country: String,
    pub created_at: i64,
    #[serde(default)]
    pub primary_complete: bool,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// Set for users under the minimum age: the date they may sign in.
    #[serde(default)]
    pub blocked_until: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub has_password: bool,
    #[serde(default)]
    pub google: bool,
    #[serde(default)]
    pub apple: bool,
    #[serde(default)]
    pub profile_pic: Option<String>,
    #[serde(default)]
    pub interests: Vec<String>,
    #[serde(default)]
    pub bio: Option<String>,
    #[serde(default)]
    pub has_pin: bool,
    /// The linked Google and Apple subjects (`sub` of their idTokens).
    /// Absent, not null, when unlinked: linking is conditioned on the
    /// attribute not existing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apple_sub: Option<String>,
    /// Sessions opened under an older epoch are revoked: bumping it ends
    /// every session of the user in one write (password reset, block).
    #[serde(default)]
    pub session_epoch: u32,
    /// Blocked by an operator (`nambari-admin block`): no sign-in, no refresh.
    #[serde(default)]
    pub blocked: bool,
}

impl User {
    pub fn new(id: UserId, phone: &str, country: &str, now: i64) -> Self {
        Self {
            id,
            phone: phone.to_owned(),
            country: country.to_owned(),
            created_at: now,
            primary_complete: false,
            first_name: None,
            last_name: None,
            birth_date: None,
            blocked_until: None,
            email: None,
            email_verified: false,
            username: None,
            has_password: false,
            google: false,
            apple: false,
            profile_pic: None,
            interests: Vec::new(),
            bio: None,
            has_pin: false,
            google_sub: None,
            apple_sub: None,
            session_epoch: 0,
            blocked: false,
        }
    }

    /// The verified email, if any.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }

    pub fn flags(&self) -> OnboardingFlags {
        OnboardingFlags {
            primary_complete: self.primary_complete,
            username: self.username.is_some(),
            email: self.email_verified,
            profile_pic: self.profile_pic.is_some(),
            interests: !self.interests.is_empty(),
            bio: self.bio.is_some(),
        }
    }
}

/// The user as integrators see it (SPEC §2): `{id, phone_number, country_code}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserObject {
    pub id: UserId,
    pub phone_number: String,
    pub country_code: String,
}

impl From<&User> for UserObject {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            phone_number: u.phone.clone(),
            country_code: u.country.clone(),
        }
    }
}

/// The onboarding flags of the endpoint contract (also carried in access tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingFlags {
    pub primary_complete: bool,
    pub username: bool,
    pub email: bool,
    pub profile_pic: bool,
    pub interests: bool,
    pub bio: bool,
}

/// The OTP session of one purpose and subject; a new one replaces the old,
/// so only the latest is ever valid. Its `session_id` is the `jti` of the
/// tempToken that carries it and changes on every resend.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OtpSession {
    pub session_id: String,
    pub purpose: String,
    pub phone: String,
    pub country: String,
    #[serde(default)]
    pub user_id: Option<UserId>,
    pub device_id: String,
    pub channel: Channel,
    /// E.164 number or email address the code went to.
    pub destination: String,
    /// HMAC-SHA256(pepper, session_id ‖ code), hex.
    pub code_hash: String,
    /// Wrong codes still allowed. A check takes one (a conditional `ADD
    /// -1` while it is above 0) *before* it compares the code, so however
    /// many checks arrive at once, no more codes are compared than the
    /// session allows; a right code then consumes the session.
    pub attempts_left: u32,
    pub resends: u32,
    pub sent_at: i64,
    pub code_expires_at: i64,
    pub expires_at: i64,
    #[serde(default)]
    pub consumed: bool,
    pub locale: String,
}

/// One device's sign-in: the family of its rotating refresh tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub sid: SessionId,
    pub user_id: UserId,
    pub device_id: String,
    #[serde(default)]
    pub device_name: Option<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    pub amr: Vec<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    /// SHA-256 of the family's one live refresh token.
    pub current_rt: String,
    #[serde(default)]
    pub revoked: bool,
    pub expires_at: i64,
    /// The user's `session_epoch` when the session was opened.
    #[serde(default)]
    pub epoch: u32,
    /// When the user last proved the phone (or the password) for this
    /// session: the access token's `auth_time`, kept across refreshes.
    #[serde(default)]
    pub auth_time: i64,
}

impl Session {
    /// Whether the session still stands for `user` (not revoked, not ended
    /// by a password reset or a block).
    pub fn valid_for(&self, user: &User) -> bool {
        !self.revoked && !user.blocked && self.epoch == user.session_epoch && self.user_id == user.id
    }
}

/// The password and PIN hashes (Argon2id PHC strings), kept apart from the
/// user item so that no code path that reads a profile reads them.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub pin_hash: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

/// A device the user has proved a code on; unknown again once
/// `expires_at` (last seen + `DEVICE_TRUST_DAYS`) has passed. The deviceId
/// is a name the client chose, so it proves nothing: the device is known
/// only to a request that presents the deviceToken whose hash is here.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KnownDevice {
    pub device_id: String,
    pub last_seen: i64,
    pub expires_at: i64,
    /// SHA-256 of the device's current deviceToken (none on devices
    /// recorded before deviceTokens: they are unknown again).
    #[serde(default)]
    pub token_hash: Option<String>,
}

/// A refresh token's hash and its state in the family.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub sid: SessionId,
    pub user_id: UserId,
    /// `active` until rotated.
    pub status: String,
    #[serde(default)]
    pub rotated_at: Option<i64>,
    pub expires_at: i64,
}

pub const RT_ACTIVE: &str = "active";
pub const RT_ROTATED: &str = "rotated";

/// A record as an item under `key`.
pub fn to_item<T: Serialize>(key: &Key, record: &T) -> Result<Item> {
    let mut item = match serde_json::to_value(record) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(Error::internal("record is not an object")),
        Err(e) => return Err(Error::internal(format!("encoding a record: {e}"))),
    };
    item.insert(PK.into(), Value::String(key.pk.clone()));
    item.insert(SK.into(), Value::String(key.sk.clone()));
    Ok(item)
}

pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_json::from_value(Value::Object(item)).map_err(|e| Error::internal(format!("decoding a stored record: {e}")))
}

/// Whether an item is still live at `now` (no `expires_at`, or in the future).
pub fn is_live(item: &Item, now: i64) -> bool {
    match item.get(EXPIRES_AT).and_then(Value::as_i64) {
        Some(exp) => exp > now,
        None => true,
    }
}

/// A put that must not overwrite a live item.
pub fn put_new<T: Serialize>(key: &Key, record: &T, now: i64) -> Result<Write> {
    Ok(Write::Put {
        item: to_item(key, record)?,
        cond: Some(Cond::absent_at(now)),
    })
}

/// Retries of a transaction cancelled by a conflict (see [`Db::transact`]).
pub const CONFLICT_RETRIES: u32 = 2;

/// A transaction cancelled by a conflict alone: no condition failed, so
/// nothing was written and it may be tried again.
pub fn is_conflict(e: &crate::table::TableError) -> bool {
    matches!(e, crate::table::TableError::TransactionCanceled(v) if !v.iter().any(|f| *f))
}

/// The typed layer over the table; counts the round trips it makes.
#[derive(Clone)]
pub struct Db {
    table: Arc<dyn Table>,
    calls: Arc<AtomicU64>,
}

impl Db {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self {
            table,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn table(&self) -> &Arc<dyn Table> {
        &self.table
    }

    /// Store round trips made so far (a transaction or batch counts as one).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// The live item under `key`.
    pub async fn get_item(&self, key: &Key, now: i64) -> Result<Option<Item>> {
        self.count();
        Ok(self.table.get(key).await?.filter(|i| is_live(i, now)))
    }

    /// The live record under `key`.
    pub async fn get<T: DeserializeOwned>(&self, key: &Key, now: i64) -> Result<Option<T>> {
        self.get_item(key, now).await?.map(from_item).transpose()
    }

    /// The live items under `keys`, in order, in one round trip.
    pub async fn batch_get(&self, keys: &[Key], now: i64) -> Result<Vec<Option<Item>>> {
        self.count();
        Ok(self
            .table
            .batch_get(keys)
            .await?
            .into_iter()
            .map(|i| i.filter(|i| is_live(i, now)))
            .collect())
    }

    pub async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), crate::table::TableError> {
        self.count();
        self.table.put(item, cond).await
    }

    pub async fn update(
        &self,
        key: &Key,
        ops: Vec<crate::table::Update>,
        cond: Option<Cond>,
    ) -> Result<Item, crate::table::TableError> {
        self.count();
        self.table.update(key, ops, cond).await
    }

    pub async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<(), crate::table::TableError> {
        self.count();
        self.table.delete(key, cond).await
    }

    /// All `writes` or none. A transaction cancelled only by a conflict with
    /// another one on the same items (DynamoDB's `TransactionConflict`: no
    /// condition failed, nothing was written) is tried again, up to
    /// [`CONFLICT_RETRIES`] times after a short random pause; conditions are
    /// evaluated afresh each time.
    ///
    /// A single put, update or delete is sent as that one conditional
    /// operation rather than a transaction: the same atomicity, half the
    /// write units (DynamoDB bills a transaction's writes twice). Its failed
    /// condition is reported as the transaction's (`failed_at(0)`).
    pub async fn transact(&self, mut writes: Vec<Write>) -> Result<(), crate::table::TableError> {
        use crate::table::TableError;
        if writes.len() == 1 && !matches!(writes[0], Write::Check { .. }) {
            let single = match writes.pop() {
                Some(Write::Put { item, cond }) => self.put(item, cond).await,
                Some(Write::Update { key, ops, cond }) => self.update(&key, ops, cond).await.map(|_| ()),
                Some(Write::Delete { key, cond }) => self.delete(&key, cond).await,
                _ => return Err(TableError::Internal("unreachable: checked above".into())),
            };
            return single.map_err(|e| match e {
                TableError::ConditionFailed => TableError::TransactionCanceled(vec![true]),
                other => other,
            });
        }
        let mut attempt = 0;
        loop {
            self.count();
            let result = self.table.transact(writes.clone()).await;
            match result {
                Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    let jitter = crate::crypto::random_bytes::<1>()
                        .map(|b| u64::from(b[0]) % 20)
                        .unwrap_or(0);
                    tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt) + jitter)).await;
                }
                other => return other,
            }
        }
    }

    /// One page of a query (expired items included: filter with [`is_live`]).
    pub async fn query(&self, query: crate::table::Query) -> Result<crate::table::Page, crate::table::TableError> {
        self.count();
        self.table.query(query).await
    }

    /// The user with this phone number: the uniqueness item, then the user.
    pub async fn user_by_phone(&self, e164: &str, now: i64) -> Result<Option<User>> {
        let Some(item) = self.get_item(&phone_key(e164), now).await? else {
            return Ok(None);
        };
        let id = item
            .get("user_id")
            .and_then(Value::as_str)
            .and_then(|s| UserId::parse(s).ok())
            .ok_or_else(|| Error::internal("phone item without a user id"))?;
        self.get(&user_key(&id), now).await
    }

    /// Writes that create `user` with its phone uniqueness item (one transaction).
    pub fn create_user_writes(user: &User, now: i64) -> Result<Vec<Write>> {
        let mut phone = Item::new();
        phone.insert("user_id".into(), Value::String(user.id.to_string()));
        phone.insert("created_at".into(), Value::from(user.created_at));
        let pk = phone_key(&user.phone);
        phone.insert(PK.into(), Value::String(pk.pk.clone()));
        phone.insert(SK.into(), Value::String(pk.sk.clone()));
        Ok(vec![
            Write::Put {
                item: to_item(&user_key(&user.id), user)?,
                cond: Some(Cond::NotExists),
            },
            Write::Put {
                item: phone,
                cond: Some(Cond::absent_at(now)),
            },
        ])
    }
}
