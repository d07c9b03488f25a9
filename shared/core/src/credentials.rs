//! Optional credentials after sign-up: a password and a PIN, their
//! lockouts (attempt slots, [`crate::attempts`]), and the PIN step-up token.
//!
//! A credential is *set* with a fresh proof (a code proved within
//! `FRESH_AUTH_SECONDS`) and *changed* only with the current one: a code
//! alone — what a SIM-swapper has — never replaces an existing PIN or
//! password. A forgotten PIN comes back through [`crate::pin_recovery`].
//!
//! Both are Argon2id hashes at OWASP's parameters (19 MiB, 2 passes, 1
//! lane), keyed with a secret derived from the OTP pepper (Argon2's own
//! `secret` input), so a dump of the table cannot be brute-forced offline —
//! which matters most for PINs: a million 6-digit PINs would fall in hours.
//! Hashing runs on Tokio's blocking pool, never on the async threads. A
//! check against a missing hash verifies a dummy hash instead, so an unknown
//! user or an unset credential costs the time of a wrong one.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tracing::info;

use crate::App;
use crate::account::{AuthMethods, Principal, authenticate};
pub use crate::attempts::{LOCK_PASSWORD, LOCK_PIN, Lockout};
use crate::auth::{StepUpBody, required};
use crate::crypto::random_bytes;
use crate::error::{Error, Result};
use crate::repo::{Credentials, User, cred_key, from_item, lock_key, user_key};
use crate::table::{Cond, Update, Write};
use crate::tokens::TokenKind;

/// The Argon2id parameters (OWASP: m = 19 MiB, t = 2, p = 1).
pub fn argon2_params() -> Params {
    Params::default()
}

fn argon2(secret: &[u8]) -> Result<Argon2<'_>> {
    Argon2::new_with_secret(secret, Algorithm::Argon2id, Version::V0x13, argon2_params())
        .map_err(|e| Error::internal(format!("argon2 set-up: {e}")))
}

/// A PHC string hashed with the same parameters, verified when there is no
/// real hash so that the miss costs the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(&[7u8; 16]).ok();
        let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params());
        salt.and_then(|s| a.hash_password(b"nambari-dummy", &s).ok().map(|h| h.to_string()))
            .unwrap_or_default()
    })
}

/// Hashes `plain` (Argon2id, random salt) on the blocking pool.
pub async fn hash_secret(app: &App, plain: &SecretString) -> Result<String> {
    let key = app.pepper.derive("argon2");
    let plain = plain.clone();
    let salt = random_bytes::<16>()?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(format!("salt: {e}")))?;
        argon2(&key)?
            .hash_password(plain.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("argon2 hash: {e}")))
    })
    .await
    .map_err(|e| Error::internal(format!("hashing task: {e}")))?
}

/// Whether `plain` matches `stored` (false, at the same cost, when there is
/// no stored hash).
pub async fn verify_secret(app: &App, plain: &SecretString, stored: Option<&str>) -> Result<bool> {
    let key = app.pepper.derive("argon2");
    let plain = plain.clone();
    let (stored, real) = match stored {
        Some(s) => (s.to_owned(), true),
        None => (dummy_hash().to_owned(), false),
    };
    let ok = tokio::task::spawn_blocking(move || {
        let Ok(hash) = PasswordHash::new(&stored) else {
            return false;
        };
        argon2(&key)
            .map(|a| a.verify_password(plain.expose_secret().as_bytes(), &hash).is_ok())
            .unwrap_or(false)
    })
    .await
    .map_err(|e| Error::internal(format!("hashing task: {e}")))?;
    Ok(ok && real)
}

// ---------------------------------------------------------------- password

/// A new password: 8–128 characters, not only spaces.
pub fn parse_password(v: Option<&str>, field: &str) -> Result<SecretString> {
    let s = required(v, field)?;
    let n = s.chars().count();
    if n < 8 {
        return Err(Error::field(field, "must be at least 8 characters"));
    }
    if n > 128 {
        return Err(Error::field(field, "must be at most 128 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::field(field, "must not contain control characters"));
    }
    Ok(SecretString::from(s.to_owned()))
}

/// A password presented at sign-in or as the current one: non-empty, at
/// most 1 KiB (Argon2 input is bounded).
pub fn presented_password(v: Option<&str>, field: &str) -> Result<SecretString> {
    match v {
        Some(s) if !s.is_empty() && s.len() <= 1024 => Ok(SecretString::from(s.to_owned())),
        Some(s) if !s.is_empty() => Err(Error::field(field, "is too long")),
        _ => Err(Error::field(field, "is required")),
    }
}

/// Whether the caller proved the phone with a code in the last
/// `FRESH_AUTH_SECONDS` (the access token's `amr` and `auth_time`).
pub fn fresh_otp(app: &App, p: &Principal) -> bool {
    let b = &p.claims.body;
    b.amr.iter().any(|m| m.starts_with("otp_")) && app.now() - b.auth_time <= app.settings.fresh_auth
}

/// What a password or PIN change returns.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialSet {
    pub auth_methods: AuthMethods,
}

/// Reads the caller's credentials and lock and checks the change is
/// allowed: a first credential of `kind` needs a code proved within
/// `FRESH_AUTH_SECONDS`; changing one needs the current one (`current`,
/// checked in an attempt slot). `new` is the parsed new value: its 422
/// comes after the token's 401 and before any slot is taken.
async fn authorize_change<T>(
    app: &App,
    token: Option<&str>,
    kind: &str,
    new: Result<T>,
    current: Option<&str>,
    current_field: &str,
) -> Result<(Principal, Lockout, T)> {
    let (p, found) = authenticate(app, token, |uid| vec![cred_key(uid), lock_key(kind, uid)]).await?;
    let new = new?;
    let mut it = found.into_iter();
    let creds: Credentials = it.next().flatten().map(from_item).transpose()?.unwrap_or_default();
    let lock_item = it.next().flatten();
    let (lock, existing) = if kind == LOCK_PIN {
        (Lockout::pin(app, &p.user.id), creds.pin_hash)
    } else {
        (Lockout::password(app, &p.user.id), creds.password_hash)
    };
    let Some(existing) = existing else {
        if !fresh_otp(app, &p) {
            return Err(Error::FactorRequired(if kind == LOCK_PIN {
                "Setting a PIN needs a code proved in the last minutes: sign in with a code again"
            } else {
                "Setting a password needs a code proved in the last minutes: sign in with a code again"
            }));
        }
        return Ok((p, lock, new));
    };
    let Some(current) = current.filter(|c| !c.is_empty()) else {
        return Err(Error::field(current_field, "is required to change it"));
    };
    if current.len() > 1024 {
        return Err(Error::field(current_field, "is too long"));
    }
    let slot = lock.take(app, lock_item).await?;
    let presented = SecretString::from(current.to_owned());
    if !verify_secret(app, &presented, Some(&existing)).await? {
        return Err(lock.fail(app, &slot).await);
    }
    lock.still_held(app, &slot)?;
    Ok((p, lock, new))
}

/// Stores a new hash of `kind` and flips the user's flag, clearing the lock.
async fn store_credential(app: &App, p: &Principal, lock: &Lockout, kind: &str, hash: String) -> Result<User> {
    let (hash_attr, flag) = if kind == LOCK_PIN {
        ("pin_hash", "has_pin")
    } else {
        ("password_hash", "has_password")
    };
    let writes = vec![
        Write::Update {
            key: cred_key(&p.user.id),
            ops: vec![Update::set(hash_attr, hash.as_str())],
            cond: None,
        },
        Write::Update {
            key: user_key(&p.user.id),
            ops: vec![Update::set(flag, true)],
            cond: Some(Cond::Exists.and(Cond::eq("session_epoch", p.user.session_epoch))),
        },
        lock.clear(),
    ];
    app.db.transact(writes).await.map_err(|e| {
        if e.failed_at(1) {
            // Every session was ended meanwhile (a reset or a block).
            Error::invalid_session_token("This session has ended. Sign in again")
        } else {
            Error::from(e)
        }
    })?;
    let mut user = p.user.clone();
    if kind == LOCK_PIN {
        user.has_pin = true;
    } else {
        user.has_password = true;
    }
    Ok(user)
}

/// `PUT /account/password`: sets a first password (after a fresh code), or
/// changes it with the current one (`currentPassword`).
pub async fn set_password(
    app: &App,
    token: Option<&str>,
    new_password: Option<&str>,
    confirm: Option<&str>,
    current: Option<&str>,
) -> Result<CredentialSet> {
    // A mismatch is refused before the current password is checked: a
    // request that cannot succeed takes no attempt slot.
    let new = parse_password(new_password, "newPassword").and_then(|new| match confirm {
        Some(c) if !crate::crypto::ct_eq(c.as_bytes(), new.expose_secret().as_bytes()) => Err(Error::PasswordMismatch),
        _ => Ok(new),
    });
    let (p, lock, new) = authorize_change(app, token, LOCK_PASSWORD, new, current, "currentPassword").await?;
    let hash = hash_secret(app, &new).await?;
    let user = store_credential(app, &p, &lock, LOCK_PASSWORD, hash).await?;
    info!(user = %user.id, "password set");
    Ok(CredentialSet {
        auth_methods: AuthMethods::of(&user),
    })
}

// ---------------------------------------------------------------- PIN

/// PINs nobody should use: the most common ones after repeats and runs.
const COMMON_PINS: [&str; 12] = [
    "1212", "1004", "2000", "6969", "2580", "0852", "1122", "1313", "4321", "121212", "112233", "123123",
];

/// A PIN: 4–6 digits, not a repeat (0000), a run (1234, 9876) or a common one.
pub fn parse_pin(v: Option<&str>, field: &str) -> Result<SecretString> {
    let s = required(v, field)?;
    if !(4..=6).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::field(field, "must be 4 to 6 digits"));
    }
    let d: Vec<i16> = s.bytes().map(|b| i16::from(b - b'0')).collect();
    let steps: Vec<i16> = d.windows(2).map(|w| w[1] - w[0]).collect();
    let repeat = steps.iter().all(|x| *x == 0);
    let run = steps.iter().all(|x| *x == 1) || steps.iter().all(|x| *x == -1);
    if repeat || run || COMMON_PINS.contains(&s) {
        return Err(Error::field(field, "is too easy to guess"));
    }
    Ok(SecretString::from(s.to_owned()))
}

/// `PUT /account/pin`: sets a first PIN (after a fresh code), or changes it
/// with the current one (`currentPin`).
pub async fn set_pin(
    app: &App,
    token: Option<&str>,
    pin: Option<&str>,
    current: Option<&str>,
) -> Result<CredentialSet> {
    let pin = parse_pin(pin, "pin");
    let (p, lock, pin) = authorize_change(app, token, LOCK_PIN, pin, current, "currentPin").await?;
    let hash = hash_secret(app, &pin).await?;
    let user = store_credential(app, &p, &lock, LOCK_PIN, hash).await?;
    info!(user = %user.id, "PIN set");
    Ok(CredentialSet {
        auth_methods: AuthMethods::of(&user),
    })
}

/// A step-up scope: 1–64 of `a–z 0–9 _ . : -` (e.g. `payments:send`).
pub fn parse_scope(v: Option<&str>) -> Result<String> {
    let s = required(v, "scope")?.trim();
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-'))
    {
        return Err(Error::field("scope", "must be 1–64 of a–z, 0–9, _ . : -"));
    }
    Ok(s.to_owned())
}

/// A step-up token and what it allows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SteppedUp {
    pub step_up_token: String,
    pub scope: String,
    pub expires_in: i64,
}

/// `POST /auth/step-up`: the PIN mints a 5-minute token for `scope`,
/// consumed once by an integrator. The PIN is compared in an attempt slot:
/// 5 wrong PINs lock it for 15 minutes, at any concurrency.
pub async fn step_up(app: &App, token: Option<&str>, pin: Option<&str>, scope: Option<&str>) -> Result<SteppedUp> {
    let (mut pin_v, mut scope_v) = (None, None);
    let parsed = crate::auth::all_fields([
        crate::auth::field(&mut pin_v, presented_pin(pin)),
        crate::auth::field(&mut scope_v, parse_scope(scope)),
    ]);
    let now = app.now();
    let (p, found) = authenticate(app, token, |uid| vec![cred_key(uid), lock_key(LOCK_PIN, uid)]).await?;
    parsed?;
    let (Some(pin), Some(scope)) = (pin_v, scope_v) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let mut it = found.into_iter();
    let creds: Credentials = it.next().flatten().map(from_item).transpose()?.unwrap_or_default();
    let lock_item = it.next().flatten();
    let lock = Lockout::pin(app, &p.user.id);
    let Some(hash) = creds.pin_hash else {
        // Same cost as a wrong PIN, then say so.
        verify_secret(app, &pin, None).await?;
        return Err(Error::PinNotSet);
    };
    let slot = lock.take(app, lock_item).await?;
    if !verify_secret(app, &pin, Some(&hash)).await? {
        return Err(lock.fail(app, &slot).await);
    }
    lock.still_held(app, &slot)?;
    if slot.others_busy {
        // Earlier failures end with a right PIN.
        app.db.delete(&lock.key, None).await?;
    }
    let body = StepUpBody {
        scope: scope.clone(),
        sid: p.session.sid.clone(),
    };
    let (step_up_token, _) = app.keys.issue(TokenKind::StepUp, p.user.id.as_str(), body, now)?;
    info!(user = %p.user.id, scope = %scope, "step-up token issued");
    Ok(SteppedUp {
        step_up_token,
        scope,
        expires_in: TokenKind::StepUp.ttl(),
    })
}

/// A PIN as presented for step-up: digits only, 4–6 (no strength rules:
/// those apply when it is set).
fn presented_pin(v: Option<&str>) -> Result<SecretString> {
    let s = required(v, "pin")?;
    if !(4..=6).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::field("pin", "must be 4 to 6 digits"));
    }
    Ok(SecretString::from(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_pins_are_refused_and_others_accepted() {
        for bad in [
            "0000", "1111", "1234", "123456", "4321", "9876", "654321", "2580", "121212", "12a4", "123", "1234567",
        ] {
            assert!(parse_pin(Some(bad), "pin").is_err(), "{bad}");
        }
        for good in ["1357", "8046", "271828", "90210", "4680"] {
            assert!(parse_pin(Some(good), "pin").is_ok(), "{good}");
        }
    }

    #[test]
    fn passwords_need_eight_characters_and_at_most_128() {
        assert!(parse_password(Some("short"), "p").is_err());
        assert!(parse_password(Some("long enough"), "p").is_ok());
        assert!(parse_password(Some(&"x".repeat(129)), "p").is_err());
        assert!(parse_password(Some("tab\there!"), "p").is_err());
    }

    #[test]
    fn scopes_are_short_lowercase_words() {
        assert_eq!(
            parse_scope(Some("payments:send")).ok().as_deref(),
            Some("payments:send")
        );
        assert!(parse_scope(Some("Payments")).is_err());
        assert!(parse_scope(Some(&"a".repeat(65))).is_err());
    }

    #[tokio::test]
    async fn a_hash_verifies_its_secret_only_and_a_missing_hash_never_verifies() {
        let t = crate::testing::app();
        let secret = SecretString::from("correct horse".to_owned());
        let h = hash_secret(&t.app, &secret).await.unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_secret(&t.app, &secret, Some(&h)).await.unwrap_or(false));
        let wrong = SecretString::from("wrong horse".to_owned());
        assert!(!verify_secret(&t.app, &wrong, Some(&h)).await.unwrap_or(true));
        assert!(!verify_secret(&t.app, &secret, None).await.unwrap_or(true));
    }

    #[tokio::test]
    async fn a_hash_made_under_another_pepper_does_not_verify() {
        let a = crate::testing::app();
        let secret = SecretString::from("correct horse".to_owned());
        let h = hash_secret(&a.app, &secret).await.unwrap_or_default();
        let b = crate::testing::app();
        b.app
            .pepper
            .set(crate::otp::Pepper::new(vec![9; 32]).unwrap_or_else(|_| unreachable!()));
        assert!(!verify_secret(&b.app, &secret, Some(&h)).await.unwrap_or(true));
    }
}
