//! The records Nambari stores, and how a record becomes an item and back.
//! Where each sits in the table is [`crate::model::keys`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::base::channel::Channel;
use crate::base::error::{Error, Result};
use crate::base::ids::{SessionId, UserId};
use crate::base::values::Platform;
use crate::model::table::{Cond, EXPIRES_AT, Item, Key, PK, SK, Write};

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

/// The user as integrators see it: `{id, phone_number, country_code}`.
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

/// The user a uniqueness item (phone, username, email, OAuth subject)
/// names.
pub fn owner(item: &Item) -> Option<UserId> {
    item.get("user_id")
        .and_then(Value::as_str)
        .and_then(|s| UserId::parse(s).ok())
}

/// A uniqueness item's body: the user it belongs to.
pub fn owner_item(user: &UserId) -> Item {
    let mut owner = Item::new();
    owner.insert("user_id".into(), Value::String(user.to_string()));
    owner
}

/// A stored key (never the key itself).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// `key_` + 22 base62: how operators name it (list, revoke, logs).
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// Created with the `nmb_test_` prefix: sandbox only.
    pub test: bool,
    pub created_at: i64,
    #[serde(default)]
    pub last_used_at: Option<i64>,
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// The keyed hash (also in the item's key).
    pub hash: String,
}

/// A stored invite.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteRecord {
    pub invite_id: String,
    pub key_id: String,
    pub phone_number: String,
    pub country_code: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub expires_at: i64,
    pub claim_url: String,
    /// Made in sandbox mode (or by a test key): nothing was sent.
    #[serde(default)]
    pub sandbox: bool,
    /// Stored, its message not (yet) delivered.
    #[serde(default)]
    pub sending: bool,
    /// `WHATSAPP`, `SMS` or `SANDBOX` once delivered.
    #[serde(default)]
    pub delivered_via: Option<String>,
}
