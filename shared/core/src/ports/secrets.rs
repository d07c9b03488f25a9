//! Secrets (SPEC §9): the signing keys, the OTP pepper, the API-key pepper
//! and the WhatsApp token.
//!
//! Each is named by an environment variable: `<NAME>_SECRET_ARN` holds the
//! ARN (or name) of a Secrets Manager secret, read through the
//! [`SecretSource`] port; for local runs `<NAME>` may hold the value itself.
//! They are read once at cold start ([`load`]), where a missing or
//! malformed secret fails the start with a message naming the secret and
//! never its value, and afterwards at most every [`REFRESH_INTERVAL`]
//! seconds by [`SecretsRefresher::refresh_if_due`] — never per request.
//!
//! The values in use sit in [`Live`] cells: a refresh replaces them while a
//! request that already holds one keeps it. [`Live<KeyRing>`] and
//! [`Live<Pepper>`] have the methods of the value they hold, so services
//! write `app.keys.issue(…)` and `app.pepper.hash(…)` as before.

use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::base::error::Result;
use crate::base::otp::{OtpCode, Pepper};
use crate::base::tokens::{Claims, KeyRing, KeySet, TokenKind};
use crate::ports::clock::Clock;

/// Seconds between two reads of the secrets after the cold start.
pub const REFRESH_INTERVAL: i64 = 300;

// ---------------------------------------------------------------- Live

/// A value that a secret refresh can replace. Readers take the current
/// value ([`Live::get`]) and keep it for as long as they need it.
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Self::from_arc(Arc::new(value))
    }

    pub fn from_arc(value: Arc<T>) -> Self {
        Self(RwLock::new(value))
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        match self.0.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the value; readers holding the old one keep it.
    pub fn set(&self, value: T) {
        let value = Arc::new(value);
        match self.0.write() {
            Ok(mut v) => *v = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Live").field(&self.get()).finish()
    }
}

/// The signing keys in use (see [`KeyRing`]).
impl Live<KeyRing> {
    pub fn issue<T: Serialize>(&self, kind: TokenKind, sub: &str, body: T, now: i64) -> Result<(String, Claims<T>)> {
        self.get().issue(kind, sub, body, now)
    }

    pub fn issue_with_jti<T: Serialize>(
        &self,
        kind: TokenKind,
        sub: &str,
        jti: &str,
        body: T,
        now: i64,
    ) -> Result<(String, Claims<T>)> {
        self.get().issue_with_jti(kind, sub, jti, body, now)
    }

    pub fn verify<T: DeserializeOwned>(&self, kind: TokenKind, token: &str, now: i64) -> Result<Claims<T>> {
        self.get().verify(kind, token, now)
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.get().jwks()
    }
}

/// The pepper in use (see [`Pepper`]).
impl Live<Pepper> {
    pub fn hash(&self, session_id: &str, code: &OtpCode) -> String {
        self.get().hash(session_id, code)
    }

    pub fn verify(&self, session_id: &str, code: &OtpCode, stored_hex: &str) -> bool {
        self.get().verify(session_id, code, stored_hex)
    }

    pub fn derive(&self, label: &str) -> [u8; 32] {
        self.get().derive(label)
    }

    pub fn keyed_hash(&self, value: &str) -> String {
        self.get().keyed_hash(value)
    }
}

// ---------------------------------------------------------------- where secrets come from

/// Why a [`SecretSource`] could not return a secret. Never holds a value.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("it does not exist")]
    NotFound,
    /// The store's error code or kind (`AccessDeniedException`, `timeout`, …).
    #[error("{0}")]
    Failed(String),
}

/// A store of secrets by id (Secrets Manager in production).
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn fetch(&self, id: &str) -> std::result::Result<SecretString, FetchError>;
}

/// A secret that is not configured, cannot be read or is malformed. The
/// message names the secret (its setting and id), never its value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecretsError(pub String);

/// One secret: the setting naming its Secrets Manager id, and the setting
/// that may hold the value itself in a local run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretName {
    pub managed: &'static str,
    pub inline: &'static str,
}

pub const SIGNING_KEYS: SecretName = SecretName {
    managed: "SIGNING_KEYS_SECRET_ARN",
    inline: "SIGNING_KEYS",
};
pub const OTP_PEPPER: SecretName = SecretName {
    managed: "OTP_PEPPER_SECRET_ARN",
    inline: "OTP_PEPPER",
};
pub const API_KEY_PEPPER: SecretName = SecretName {
    managed: "API_KEY_PEPPER_SECRET_ARN",
    inline: "API_KEY_PEPPER",
};
pub const WHATSAPP_TOKEN: SecretName = SecretName {
    managed: "WHATSAPP_TOKEN_SECRET_ARN",
    inline: "WHATSAPP_TOKEN",
};

/// Where one secret comes from.
#[derive(Clone)]
pub enum SecretRef {
    /// A Secrets Manager secret, by ARN or name, given in `setting`.
    Managed { setting: &'static str, id: String },
    /// The value itself, given in `setting` (local runs).
    Inline { setting: &'static str, value: SecretString },
}

impl SecretRef {
    /// How messages name this secret: its setting and, for Secrets Manager,
    /// its id — never its value.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Managed { setting, id } => format!("{setting} ({id})"),
            SecretRef::Inline { setting, .. } => (*setting).to_owned(),
        }
    }

    fn is_managed(&self) -> bool {
        matches!(self, SecretRef::Managed { .. })
    }

    /// `name.managed` when set, else `name.inline`, else none.
    pub fn lookup(name: SecretName, get: &impl Fn(&str) -> Option<String>) -> Option<SecretRef> {
        let set = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        if let Some(id) = set(name.managed) {
            return Some(SecretRef::Managed {
                setting: name.managed,
                id: id.trim().to_owned(),
            });
        }
        set(name.inline).map(|v| SecretRef::Inline {
            setting: name.inline,
            value: SecretString::from(v),
        })
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Managed { .. } => write!(f, "SecretRef({})", self.describe()),
            SecretRef::Inline { setting, .. } => write!(f, "SecretRef({setting}: ***)"),
        }
    }
}

/// Which secrets a process reads (a function's needs; local mode's are
/// every one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub signing_keys: bool,
    pub otp_pepper: bool,
    pub api_key_pepper: bool,
    /// Only when WhatsApp messages are really sent.
    pub whatsapp_token: bool,
}

/// Where each secret a process reads comes from (`None`: not read).
#[derive(Clone, Debug, Default)]
pub struct SecretRefs {
    pub signing_keys: Option<SecretRef>,
    pub otp_pepper: Option<SecretRef>,
    pub api_key_pepper: Option<SecretRef>,
    pub whatsapp_token: Option<SecretRef>,
}

fn not_configured(name: SecretName) -> SecretsError {
    SecretsError(format!(
        "secret {} is not set (for a local run, {} may hold the value itself)",
        name.managed, name.inline
    ))
}

impl SecretRefs {
    /// Reads the settings of the `wanted` secrets through `get`; each of
    /// them is required. The others are not read at all (a function that
    /// does not need a secret is not granted it).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        wanted: Wanted,
    ) -> std::result::Result<Self, SecretsError> {
        let pick = |want: bool, name| -> std::result::Result<Option<SecretRef>, SecretsError> {
            if !want {
                return Ok(None);
            }
            SecretRef::lookup(name, &get)
                .map(Some)
                .ok_or_else(|| not_configured(name))
        };
        Ok(Self {
            signing_keys: pick(wanted.signing_keys, SIGNING_KEYS)?,
            otp_pepper: pick(wanted.otp_pepper, OTP_PEPPER)?,
            api_key_pepper: pick(wanted.api_key_pepper, API_KEY_PEPPER)?,
            whatsapp_token: pick(wanted.whatsapp_token, WHATSAPP_TOKEN)?,
        })
    }

    /// Whether any secret is read from a [`SecretSource`] (and so refreshed).
    pub fn any_managed(&self) -> bool {
        self.all().iter().any(|r| r.is_managed())
    }

    fn all(&self) -> Vec<&SecretRef> {
        [
            &self.signing_keys,
            &self.otp_pepper,
            &self.api_key_pepper,
            &self.whatsapp_token,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

// ---------------------------------------------------------------- parsing

/// The secrets, parsed (`None`: not read).
pub struct Secrets {
    pub keys: Option<KeyRing>,
    pub otp_pepper: Option<Pepper>,
    pub api_key_pepper: Option<Pepper>,
    pub whatsapp_token: Option<SecretString>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("keys", &self.keys)
            .field("otp_pepper", &self.otp_pepper)
            .field("api_key_pepper", &self.api_key_pepper)
            .field("whatsapp_token", &self.whatsapp_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A JSON key set (`{"current":{"kid","pem"},"previous":…}`) as a key ring.
pub fn parse_key_ring(
    raw: &str,
    what: &str,
    issuer: &str,
    audience: &str,
) -> std::result::Result<KeyRing, SecretsError> {
    let set: KeySet = serde_json::from_str(raw).map_err(|_| {
        SecretsError(format!(
            "secret {what} is not a JSON key set {{\"current\":{{\"kid\",\"pem\"}},\"previous\":…}}"
        ))
    })?;
    KeyRing::from_set(&set, issuer, audience).map_err(|_| {
        SecretsError(format!(
            "secret {what} holds a key that is not a PKCS#8 P-256 PEM key, or two keys with one kid"
        ))
    })
}

/// A hex pepper of at least 16 bytes.
pub fn parse_pepper(raw: &str, what: &str) -> std::result::Result<Pepper, SecretsError> {
    let bytes = hex::decode(raw.trim()).map_err(|_| SecretsError(format!("secret {what} is not hex")))?;
    Pepper::new(bytes).map_err(|_| SecretsError(format!("secret {what} must be at least 16 bytes")))
}

/// A bearer token: printable ASCII without spaces (it goes into a header).
pub fn parse_token(raw: &str, what: &str) -> std::result::Result<SecretString, SecretsError> {
    let t = raw.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SecretsError(format!(
            "secret {what} must be a non-empty token of printable characters"
        )));
    }
    Ok(SecretString::from(t.to_owned()))
}

async fn read(r: &SecretRef, source: Option<&dyn SecretSource>) -> std::result::Result<SecretString, SecretsError> {
    match r {
        SecretRef::Inline { value, .. } => Ok(value.clone()),
        SecretRef::Managed { id, .. } => {
            let source = source
                .ok_or_else(|| SecretsError(format!("secret {} cannot be read: no secret store", r.describe())))?;
            source.fetch(id).await.map_err(|e| match e {
                FetchError::NotFound => SecretsError(format!("secret {} is missing: it does not exist", r.describe())),
                FetchError::Failed(why) => SecretsError(format!("secret {} cannot be read: {why}", r.describe())),
            })
        }
    }
}

async fn read_opt(
    r: Option<&SecretRef>,
    source: Option<&dyn SecretSource>,
) -> std::result::Result<Option<(String, SecretString)>, SecretsError> {
    match r {
        None => Ok(None),
        Some(r) => Ok(Some((r.describe(), read(r, source).await?))),
    }
}

/// Reads and parses every secret of `refs` (at once). The error names the
/// first secret that is missing, unreadable or malformed.
pub async fn load(
    refs: &SecretRefs,
    source: Option<&dyn SecretSource>,
    issuer: &str,
    audience: &str,
) -> std::result::Result<Secrets, SecretsError> {
    let (keys, pepper, api_pepper, token) = tokio::join!(
        read_opt(refs.signing_keys.as_ref(), source),
        read_opt(refs.otp_pepper.as_ref(), source),
        read_opt(refs.api_key_pepper.as_ref(), source),
        read_opt(refs.whatsapp_token.as_ref(), source),
    );
    let keys = match keys? {
        Some((what, raw)) => Some(parse_key_ring(raw.expose_secret(), &what, issuer, audience)?),
        None => None,
    };
    let pepper_of = |r: Option<(String, SecretString)>| match r {
        Some((what, raw)) => parse_pepper(raw.expose_secret(), &what).map(Some),
        None => Ok(None),
    };
    let otp_pepper = pepper_of(pepper?)?;
    let api_key_pepper = pepper_of(api_pepper?)?;
    let whatsapp_token = match token? {
        Some((what, raw)) => Some(parse_token(raw.expose_secret(), &what)?),
        None => None,
    };
    Ok(Secrets {
        keys,
        otp_pepper,
        api_key_pepper,
        whatsapp_token,
    })
}

// ---------------------------------------------------------------- refresh

/// The cells that hold the secrets in use (shared with the App and the
/// WhatsApp sender).
#[derive(Clone, Debug)]
pub struct LiveSecrets {
    pub keys: Option<Arc<Live<KeyRing>>>,
    pub otp_pepper: Option<Arc<Live<Pepper>>>,
    pub api_key_pepper: Option<Arc<Live<Pepper>>>,
    pub whatsapp_token: Option<Arc<Live<SecretString>>>,
}

impl LiveSecrets {
    /// Puts freshly read secrets in place. A secret that was not configured
    /// at cold start stays unconfigured.
    pub fn replace(&self, s: Secrets) {
        if let (Some(cell), Some(v)) = (&self.keys, s.keys) {
            cell.set(v);
        }
        if let (Some(cell), Some(v)) = (&self.otp_pepper, s.otp_pepper) {
            cell.set(v);
        }
        if let (Some(cell), Some(v)) = (&self.api_key_pepper, s.api_key_pepper) {
            cell.set(v);
        }
        if let (Some(cell), Some(v)) = (&self.whatsapp_token, s.whatsapp_token) {
            cell.set(v);
        }
    }
}

/// What [`SecretsRefresher::refresh_if_due`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// The last read is recent (or another refresh is under way).
    NotDue,
    Refreshed,
    /// The read failed; the current values stay in use (logged).
    Failed,
}

/// Re-reads the secrets at most every [`REFRESH_INTERVAL`] seconds.
///
/// Call [`Self::refresh_if_due`] before handling a request: it costs a clock
/// read and an uncontended lock unless a refresh is due, so the secret
/// store sees at most one read of each secret per interval and per process,
/// however many requests come. A failed read keeps the values in use and is
/// tried again one interval later.
pub struct SecretsRefresher {
    refs: SecretRefs,
    source: Arc<dyn SecretSource>,
    live: LiveSecrets,
    clock: Arc<dyn Clock>,
    issuer: String,
    audience: String,
    last_read: tokio::sync::Mutex<i64>,
}

impl SecretsRefresher {
    /// `read_at`: when the secrets in `live` were read (the cold start).
    pub fn new(
        refs: SecretRefs,
        source: Arc<dyn SecretSource>,
        live: LiveSecrets,
        clock: Arc<dyn Clock>,
        issuer: &str,
        audience: &str,
        read_at: i64,
    ) -> Self {
        Self {
            refs,
            source,
            live,
            clock,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            last_read: tokio::sync::Mutex::new(read_at),
        }
    }

    pub fn live(&self) -> &LiveSecrets {
        &self.live
    }

    pub async fn refresh_if_due(&self) -> Refresh {
        let now = self.clock.now_secs();
        let Ok(mut last) = self.last_read.try_lock() else {
            return Refresh::NotDue;
        };
        if now - *last < REFRESH_INTERVAL {
            return Refresh::NotDue;
        }
        *last = now;
        match load(&self.refs, Some(self.source.as_ref()), &self.issuer, &self.audience).await {
            Ok(s) => {
                self.live.replace(s);
                info!("secrets refreshed");
                Refresh::Refreshed
            }
            Err(e) => {
                warn!(error = %e, "secret refresh failed; the current secrets stay in use");
                Refresh::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::ports::clock::FixedClock;

    /// A secret store in memory that counts reads.
    #[derive(Default)]
    struct Store {
        values: Mutex<HashMap<String, String>>,
        reads: Mutex<u32>,
    }

    impl Store {
        fn put(&self, id: &str, v: &str) {
            if let Ok(mut m) = self.values.lock() {
                m.insert(id.into(), v.into());
            }
        }

        fn reads(&self) -> u32 {
            self.reads.lock().map(|n| *n).unwrap_or(0)
        }
    }

    #[async_trait]
    impl SecretSource for Store {
        async fn fetch(&self, id: &str) -> std::result::Result<SecretString, FetchError> {
            if let Ok(mut n) = self.reads.lock() {
                *n += 1;
            }
            let v = self.values.lock().ok().and_then(|m| m.get(id).cloned());
            v.map(SecretString::from).ok_or(FetchError::NotFound)
        }
    }

    const PEPPER_HEX: &str = "000102030405060708090a0b0c0d0e0f";

    fn key_set_json() -> (KeySet, String) {
        let set = KeyRing::generate_set().unwrap_or_else(|e| unreachable!("{e}"));
        let json = serde_json::to_string(&set).unwrap_or_default();
        (set, json)
    }

    fn managed_lookup(k: &str) -> Option<String> {
        match k {
            "SIGNING_KEYS_SECRET_ARN" => Some("keys".into()),
            "OTP_PEPPER_SECRET_ARN" => Some("pepper".into()),
            _ => None,
        }
    }

    /// The two secrets every function of these tests reads.
    const KEYS_AND_PEPPER: Wanted = Wanted {
        signing_keys: true,
        otp_pepper: true,
        api_key_pepper: false,
        whatsapp_token: false,
    };
    const WITH_WHATSAPP: Wanted = Wanted {
        whatsapp_token: true,
        ..KEYS_AND_PEPPER
    };

    fn kid(keys: &Live<KeyRing>) -> String {
        keys.jwks()["keys"][0]["kid"].as_str().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn inline_values_need_no_secret_store() {
        let (_, json) = key_set_json();
        let get = |k: &str| match k {
            "SIGNING_KEYS" => Some(json.clone()),
            "OTP_PEPPER" => Some(PEPPER_HEX.into()),
            _ => None,
        };
        let refs = SecretRefs::from_lookup(get, KEYS_AND_PEPPER).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(!refs.any_managed());
        let s = load(&refs, None, "iss", "aud").await;
        assert!(s.is_ok_and(|s| s.api_key_pepper.is_none() && s.whatsapp_token.is_none()));
    }

    #[test]
    fn an_unset_secret_is_named_and_the_whatsapp_token_is_required_only_when_needed() {
        let e = SecretRefs::from_lookup(|_| None, KEYS_AND_PEPPER)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("SIGNING_KEYS_SECRET_ARN")));
        assert!(SecretRefs::from_lookup(managed_lookup, KEYS_AND_PEPPER).is_ok());
        let e = SecretRefs::from_lookup(managed_lookup, WITH_WHATSAPP)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("WHATSAPP_TOKEN_SECRET_ARN")));
        let with_token = |k: &str| match k {
            "WHATSAPP_TOKEN_SECRET_ARN" => Some("token".into()),
            k => managed_lookup(k),
        };
        let unneeded = SecretRefs::from_lookup(with_token, KEYS_AND_PEPPER).map(|r| r.whatsapp_token.is_none());
        assert!(unneeded.is_ok_and(|none| none), "an unneeded token is not read");
    }

    #[tokio::test]
    async fn a_missing_or_malformed_secret_is_named_without_its_value() {
        let store = Store::default();
        store.put("keys", "not json at all: s3cr3t");
        let refs = SecretRefs::from_lookup(managed_lookup, KEYS_AND_PEPPER).unwrap_or_else(|e| unreachable!("{e}"));
        let e = load(&refs, Some(&store), "iss", "aud")
            .await
            .err()
            .map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains("SIGNING_KEYS_SECRET_ARN (keys)"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");

        let (_, json) = key_set_json();
        store.put("keys", &json);
        let e = load(&refs, Some(&store), "iss", "aud")
            .await
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("OTP_PEPPER_SECRET_ARN (pepper) is missing")));

        store.put("pepper", "abcd");
        let e = load(&refs, Some(&store), "iss", "aud")
            .await
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("OTP_PEPPER_SECRET_ARN (pepper) must be at least 16 bytes")));
    }

    #[tokio::test]
    async fn secrets_are_read_again_only_after_five_minutes_and_a_failure_keeps_the_current_ones() {
        let store = Arc::new(Store::default());
        let (set, json) = key_set_json();
        store.put("keys", &json);
        store.put("pepper", PEPPER_HEX);
        let refs = SecretRefs::from_lookup(managed_lookup, KEYS_AND_PEPPER).unwrap_or_else(|e| unreachable!("{e}"));
        let s = load(&refs, Some(store.as_ref()), "iss", "aud")
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(store.reads(), 2);
        let live = LiveSecrets {
            keys: s.keys.map(|k| Arc::new(Live::new(k))),
            otp_pepper: s.otp_pepper.map(|p| Arc::new(Live::new(p))),
            api_key_pepper: None,
            whatsapp_token: None,
        };
        let keys = live.keys.clone().unwrap_or_else(|| unreachable!("read above"));
        let clock = Arc::new(FixedClock::at_secs(1_000));
        let r = SecretsRefresher::new(refs, store.clone(), live.clone(), clock.clone(), "iss", "aud", 1_000);

        // A rotation in the store is not seen before the interval has passed.
        let rotated = KeyRing::rotate_set(&set).unwrap_or_else(|e| unreachable!("{e}"));
        store.put("keys", &serde_json::to_string(&rotated).unwrap_or_default());
        clock.advance(REFRESH_INTERVAL - 1);
        for _ in 0..10 {
            assert_eq!(r.refresh_if_due().await, Refresh::NotDue);
        }
        assert_eq!(store.reads(), 2);
        assert_eq!(kid(&keys), set.current.kid);

        clock.advance(1);
        assert_eq!(r.refresh_if_due().await, Refresh::Refreshed);
        assert_eq!(r.refresh_if_due().await, Refresh::NotDue);
        assert_eq!(store.reads(), 4);
        assert_eq!(kid(&keys), rotated.current.kid);

        // A broken secret later: the keys in use stay.
        store.put("keys", "{}");
        clock.advance(REFRESH_INTERVAL);
        assert_eq!(r.refresh_if_due().await, Refresh::Failed);
        assert_eq!(kid(&keys), rotated.current.kid);
        assert_eq!(r.refresh_if_due().await, Refresh::NotDue);
    }

    #[test]
    fn a_secret_that_is_not_wanted_is_not_read_even_when_set() {
        let only_keys = Wanted {
            signing_keys: true,
            ..Wanted::default()
        };
        let refs = SecretRefs::from_lookup(managed_lookup, only_keys).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(refs.otp_pepper.is_none() && refs.api_key_pepper.is_none());
        let e = SecretRefs::from_lookup(|_| None, Wanted::default());
        assert!(e.is_ok_and(|r| !r.any_managed()), "nothing wanted, nothing required");
    }

    #[test]
    fn debug_output_hides_inline_values() {
        let r = SecretRef::Inline {
            setting: "OTP_PEPPER",
            value: SecretString::from("deadbeef".to_owned()),
        };
        assert_eq!(format!("{r:?}"), "SecretRef(OTP_PEPPER: ***)");
        assert!(parse_token("abc def", "T").is_err());
        assert!(parse_token(" EAAJ.x-y_z ", "T").is_ok());
    }
}
