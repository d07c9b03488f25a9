//! Setting a password or a PIN (docs/SECURITY.md, "Passwords and PINs"):
//! a first one needs a fresh proof (a code proved within
//! `FRESH_AUTH_SECONDS`), a change needs the current one — a code alone,
//! what a SIM-swapper has, never replaces an existing PIN or password.
//! Every guess at one is compared in an attempt slot
//! ([`crate::services::attempts`]).

use secrecy::SecretString;
use serde::Serialize;

use crate::App;
use crate::base::error::{Error, Result};
use crate::model::keys::{cred_key, lock_key, user_key};
use crate::model::records::{Credentials, User, from_item};
use crate::model::table::{Cond, Item, Update, Write};
use crate::ports::table::Tx;
pub use crate::services::attempts::{LOCK_PASSWORD, LOCK_PIN, Lockout, Slot};
use crate::services::principal::{Principal, authenticate, fresh_otp, session_ended};
use crate::services::profile::AuthMethods;
use crate::services::secret_hash::verify_secret;

/// Compares `presented` with `hash` in an attempt slot of `lock` (whose
/// item was read as `lock_item`): the slot is taken before the comparison,
/// a wrong answer is recorded in it (`INVALID_CREDENTIALS`, or
/// `ACCOUNT_LOCKED` on the last slot), and an answer that outlived its slot
/// is not honoured.
pub async fn check_in_slot(
    app: &App,
    lock: &Lockout,
    lock_item: Option<Item>,
    presented: &SecretString,
    hash: &str,
) -> Result<Slot> {
    let slot = lock.take(app, lock_item).await?;
    if !verify_secret(app, presented, Some(hash)).await? {
        return Err(lock.fail(app, &slot).await);
    }
    lock.still_held(app, &slot)?;
    Ok(slot)
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
/// checked in an attempt slot). `req` is the parsed request: its 422
/// comes after the token's 401 and before any slot is taken; `current`
/// reads the current secret from it.
pub async fn authorize_change<T>(
    app: &App,
    token: Option<&str>,
    kind: &str,
    req: Result<T>,
    current: impl Fn(&T) -> Option<&str>,
    current_field: &str,
) -> Result<(Principal, Lockout, T)> {
    let (p, found) = authenticate(app, token, |uid| vec![cred_key(uid), lock_key(kind, uid)]).await?;
    let req = req?;
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
        return Ok((p, lock, req));
    };
    let Some(presented) = current(&req).filter(|c| !c.is_empty()).map(str::to_owned) else {
        return Err(Error::field(current_field, "is required to change it"));
    };
    if presented.len() > 1024 {
        return Err(Error::field(current_field, "is too long"));
    }
    let presented = SecretString::from(presented);
    check_in_slot(app, &lock, lock_item, &presented, &existing).await?;
    Ok((p, lock, req))
}

/// Stores a new hash of `kind` and flips the user's flag, clearing the lock.
pub async fn store_credential(app: &App, p: &Principal, lock: &Lockout, kind: &str, hash: String) -> Result<User> {
    let (hash_attr, flag) = if kind == LOCK_PIN {
        ("pin_hash", "has_pin")
    } else {
        ("password_hash", "has_password")
    };
    let mut tx = Tx::new();
    tx.add(Write::Update {
        key: cred_key(&p.user.id),
        ops: vec![Update::set(hash_attr, hash.as_str())],
        cond: None,
    })
    // Every session was ended meanwhile (a reset or a block).
    .add_or(
        Write::Update {
            key: user_key(&p.user.id),
            ops: vec![Update::set(flag, true)],
            cond: Some(Cond::Exists.and(Cond::eq("session_epoch", p.user.session_epoch))),
        },
        session_ended,
    )
    .add(lock.clear());
    app.db.commit(tx).await.map_err(Error::from)?;
    let mut user = p.user.clone();
    if kind == LOCK_PIN {
        user.has_pin = true;
    } else {
        user.has_password = true;
    }
    Ok(user)
}
