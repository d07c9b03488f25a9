//! Password and PIN hashes: Argon2id at OWASP's parameters (19 MiB, 2
//! passes, 1 lane), keyed with a secret derived from the OTP pepper
//! (Argon2's own `secret` input), so a dump of the table cannot be
//! brute-forced offline — which matters most for PINs: a million 6-digit
//! PINs would fall in hours. Hashing runs on Tokio's blocking pool, never on
//! the async threads. A check against a missing hash verifies a dummy hash
//! instead, so an unknown user or an unset credential costs the time of a
//! wrong one.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::App;
use crate::base::crypto::random_bytes;
use crate::base::error::{Error, Result};

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
    let key = app.pepper()?.derive("argon2");
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
    let key = app.pepper()?.derive("argon2");
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

#[cfg(test)]
mod tests {
    use super::*;

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
            .pepper()
            .unwrap()
            .set(crate::base::otp::Pepper::new(vec![9; 32]).unwrap());
        assert!(!verify_secret(&b.app, &secret, Some(&h)).await.unwrap_or(true));
    }
}
