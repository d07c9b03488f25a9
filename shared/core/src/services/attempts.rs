//! Attempt slots: a guess at a secret is compared only after an atomic
//! conditional write has reserved it, so however many guesses arrive at
//! once, no more are compared than the limit allows (docs/SECURITY.md,
//! "Passwords and PINs").
//!
//! Two shapes share the rule "reserve, then compare, then record":
//!
//! - **A code session** (end-user OTP sessions, integrator sessions) keeps
//!   its attempts on the session item itself: a check takes one with a
//!   conditional decrement before comparing (see `auth::check_code` and the
//!   integrator's versioned save). A right code ends the session, so the
//!   taken attempt never needs giving back.
//! - **A lockout** (password, PIN) outlives any session, and a right
//!   answer must not count as a failure. Its item holds `max` slots
//!   `s0…s{max-1}`, each the epoch second until which it is busy. An
//!   attempt takes a free slot as a short *lease* ([`LEASE_SECONDS`]) with
//!   a conditional write; a wrong answer turns the lease into a failure
//!   that lasts `LOCKOUT_SECONDS`; a right one clears the item where the
//!   request writes anyway, or else lets its lease lapse — so a success
//!   costs no write of its own (step-up stays one round trip plus the
//!   slot). With every slot busy, no attempt is compared: `ACCOUNT_LOCKED`
//!   (until the first slot frees). `max` failures lock the secret for
//!   `LOCKOUT_SECONDS` from the last of them; a success's lease still
//!   holds its slot for up to [`LEASE_SECONDS`] (a burst of right answers
//!   and wrong ones within seconds may have to wait that long).
//!
//! A lease that lapsed before its comparison finished (a stalled request)
//! is not honoured: the answer is 503, so no comparison ever counts outside
//! its slot.

use serde_json::Value;
use tracing::{info, warn};

use crate::App;
use crate::base::error::{Error, Result};
use crate::base::ids::UserId;
use crate::model::keys::lock_key;
use crate::model::table::{Cond, EXPIRES_AT, Item, Key, TableError, Update, Write};

/// Lockout kinds.
pub const LOCK_PASSWORD: &str = "pwd";
pub const LOCK_PIN: &str = "pin";

/// How long a slot is held by an attempt in progress. An Argon2id check
/// takes tens of milliseconds; the lease only has to outlast it.
pub const LEASE_SECONDS: i64 = 15;

/// The slots of one secret of one user.
#[derive(Clone, Debug)]
pub struct Lockout {
    pub key: Key,
    pub max: u32,
    lockout: i64,
}

/// A slot an attempt holds.
#[derive(Clone, Debug)]
pub struct Slot {
    index: u32,
    lease_until: i64,
    /// Other slots were busy when it was taken (earlier failures, or
    /// attempts in flight): a success clears them.
    pub others_busy: bool,
}

fn attr(i: u32) -> String {
    format!("s{i}")
}

impl Lockout {
    pub fn password(app: &App, user: &UserId) -> Self {
        Self {
            key: lock_key(LOCK_PASSWORD, user),
            max: app.settings.password_max_failures,
            lockout: app.settings.lockout_seconds,
        }
    }

    pub fn pin(app: &App, user: &UserId) -> Self {
        Self {
            key: lock_key(LOCK_PIN, user),
            max: app.settings.pin_max_failures,
            lockout: app.settings.lockout_seconds,
        }
    }

    /// Until when slot `i` of `item` is busy, if it is at `now`.
    fn busy_until(item: Option<&Item>, i: u32, now: i64) -> Option<i64> {
        item.and_then(|it| it.get(&attr(i)))
            .and_then(Value::as_i64)
            .filter(|until| *until > now)
    }

    fn free(&self, item: Option<&Item>, now: i64) -> Vec<u32> {
        (0..self.max)
            .filter(|i| Self::busy_until(item, *i, now).is_none())
            .collect()
    }

    /// `ACCOUNT_LOCKED` with the seconds until the first slot frees.
    fn locked(&self, item: Option<&Item>, now: i64) -> Error {
        let until = (0..self.max)
            .filter_map(|i| Self::busy_until(item, i, now))
            .min()
            .unwrap_or(now + self.lockout);
        Error::AccountLocked {
            retry_after: (until - now).max(1) as u64,
        }
    }

    /// `ACCOUNT_LOCKED` when every slot of the stored `item` is busy.
    pub fn check(&self, item: Option<&Item>, now: i64) -> Result<()> {
        if self.free(item, now).is_empty() {
            Err(self.locked(item, now))
        } else {
            Ok(())
        }
    }

    /// Takes a free slot for one attempt, starting from `item` as read
    /// (the caller's batch read); `ACCOUNT_LOCKED` when none is free. A
    /// slot another request took first is retried on a fresh read.
    pub async fn take(&self, app: &App, item: Option<Item>) -> Result<Slot> {
        let now = app.now();
        let mut current = item;
        for _ in 0..=self.max + 1 {
            let free = self.free(current.as_ref(), now);
            if free.is_empty() {
                info!(lock = self.kind(), "attempt refused: every slot is busy");
                return Err(self.locked(current.as_ref(), now));
            }
            // A random free slot: concurrent attempts rarely pick the same one.
            let pick = crate::base::crypto::random_bytes::<2>()
                .map(|b| usize::from(u16::from_le_bytes(b)) % free.len())
                .unwrap_or(0);
            let index = free[pick];
            let a = attr(index);
            let lease_until = now + LEASE_SECONDS;
            let taken = app
                .db
                .update(
                    &self.key,
                    vec![
                        Update::set(&a, lease_until),
                        Update::set(EXPIRES_AT, now + self.lockout),
                    ],
                    Some(Cond::AttrNotExists(a.clone()).or(Cond::le(&a, now))),
                )
                .await;
            match taken {
                Ok(after) => {
                    let others_busy = (0..self.max)
                        .filter(|i| *i != index)
                        .any(|i| Self::busy_until(Some(&after), i, now).is_some());
                    return Ok(Slot {
                        index,
                        lease_until,
                        others_busy,
                    });
                }
                // Taken meanwhile: read the slots again (a one-key batch
                // read: the same call every lockout's caller already makes).
                Err(TableError::ConditionFailed) => {
                    current = app
                        .db
                        .batch_get(std::slice::from_ref(&self.key), now)
                        .await?
                        .pop()
                        .flatten()
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(self.locked(current.as_ref(), now))
    }

    /// 503 when `slot`'s lease lapsed while its comparison ran: the answer
    /// is not honoured.
    pub fn still_held(&self, app: &App, slot: &Slot) -> Result<()> {
        if app.now() < slot.lease_until {
            Ok(())
        } else {
            warn!(lock = self.kind(), "an attempt outlived its slot; not honoured");
            Err(Error::Unavailable("attempt slot lapsed".into()))
        }
    }

    /// Records a wrong answer in `slot`: `INVALID_CREDENTIALS`, or
    /// `ACCOUNT_LOCKED` when it was the last free slot (the lock then lasts
    /// `LOCKOUT_SECONDS` from now).
    pub async fn fail(&self, app: &App, slot: &Slot) -> Error {
        if let Err(e) = self.still_held(app, slot) {
            return e;
        }
        let now = app.now();
        let until = now + self.lockout;
        let recorded = app
            .db
            .update(
                &self.key,
                vec![Update::set(&attr(slot.index), until), Update::set(EXPIRES_AT, until)],
                None,
            )
            .await;
        let after = match recorded {
            Ok(item) => item,
            Err(e) => return e.into(),
        };
        // Failures, not leases of attempts in flight or just done, make the
        // lock: a slot busy for longer than a lease holds a failure.
        let failures = (0..self.max)
            .filter(|i| Self::busy_until(Some(&after), *i, now).is_some_and(|u| u > now + LEASE_SECONDS))
            .count();
        if failures < self.max as usize {
            return Error::InvalidCredentials;
        }
        // The last slot: the lock lasts LOCKOUT_SECONDS from this failure.
        let mut ops: Vec<Update> = (0..self.max).map(|i| Update::set(&attr(i), until)).collect();
        ops.push(Update::set(EXPIRES_AT, until));
        if let Err(e) = app.db.update(&self.key, ops, None).await {
            warn!(error = %e, "could not extend a lock");
        }
        info!(lock = self.kind(), "locked after repeated failures");
        Error::AccountLocked {
            retry_after: self.lockout as u64,
        }
    }

    /// The write that clears every slot after a right answer (earlier
    /// failures and this attempt's lease).
    pub fn clear(&self) -> Write {
        Write::Delete {
            key: self.key.clone(),
            cond: None,
        }
    }

    /// `password` or `PIN`, for logs.
    fn kind(&self) -> &str {
        self.key.pk.split('#').nth(1).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn user() -> UserId {
        UserId::generate().unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[tokio::test]
    async fn five_slots_then_locked_and_a_success_clears_them() {
        let t = testing::app();
        let lock = Lockout::pin(&t.app, &user());
        for i in 0..4 {
            let slot = lock
                .take(&t.app, t.app.db.get_item(&lock.key, t.app.now()).await.unwrap_or(None))
                .await;
            let slot = slot.unwrap_or_else(|e| unreachable!("take {i}: {e}"));
            assert!(matches!(lock.fail(&t.app, &slot).await, Error::InvalidCredentials));
        }
        let item = t.app.db.get_item(&lock.key, t.app.now()).await.unwrap_or(None);
        let slot = lock.take(&t.app, item).await.unwrap_or_else(|e| unreachable!("{e}"));
        assert!(slot.others_busy);
        assert!(matches!(
            lock.fail(&t.app, &slot).await,
            Error::AccountLocked { retry_after: 900 }
        ));
        let item = t.app.db.get_item(&lock.key, t.app.now()).await.unwrap_or(None);
        assert!(matches!(
            lock.take(&t.app, item).await,
            Err(Error::AccountLocked { .. })
        ));
        t.clock.advance(900);
        let item = t.app.db.get_item(&lock.key, t.app.now()).await.unwrap_or(None);
        let slot = lock.take(&t.app, item).await.unwrap_or_else(|e| unreachable!("{e}"));
        assert!(!slot.others_busy, "every failure lapsed with the lock");
    }

    #[tokio::test]
    async fn a_success_without_a_write_lets_its_lease_lapse() {
        let t = testing::app();
        let lock = Lockout::password(&t.app, &user());
        // Five successes in a row hold every slot for the lease …
        for _ in 0..5 {
            let item = t.app.db.get_item(&lock.key, t.app.now()).await.unwrap_or(None);
            assert!(lock.take(&t.app, item).await.is_ok());
        }
        let item = t.app.db.get_item(&lock.key, t.app.now()).await.unwrap_or(None);
        assert!(matches!(
            lock.take(&t.app, item).await,
            Err(Error::AccountLocked { retry_after: 15 })
        ));
        // … and free them when it lapses.
        t.clock.advance(LEASE_SECONDS);
        let item = t.app.db.get_item(&lock.key, t.app.now()).await.unwrap_or(None);
        assert!(lock.take(&t.app, item).await.is_ok());
    }

    #[tokio::test]
    async fn a_recent_success_does_not_count_as_a_failure() {
        let t = testing::app();
        let lock = Lockout::pin(&t.app, &user());
        let read = |t: &testing::TestApp| {
            let key = lock.key.clone();
            let app = t.app.clone();
            async move { app.db.get_item(&key, app.now()).await.unwrap_or(None) }
        };
        // A success holds its lease; four failures after it are not a lock.
        assert!(lock.take(&t.app, None).await.is_ok());
        for _ in 0..4 {
            let slot = lock
                .take(&t.app, read(&t).await)
                .await
                .unwrap_or_else(|e| unreachable!("{e}"));
            assert!(matches!(lock.fail(&t.app, &slot).await, Error::InvalidCredentials));
        }
        // The fifth attempt waits for the lease.
        assert!(matches!(
            lock.take(&t.app, read(&t).await).await,
            Err(Error::AccountLocked { retry_after: 15 })
        ));
        t.clock.advance(LEASE_SECONDS);
        let slot = lock
            .take(&t.app, read(&t).await)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(matches!(
            lock.fail(&t.app, &slot).await,
            Error::AccountLocked { retry_after: 900 }
        ));
    }

    #[tokio::test]
    async fn an_attempt_that_outlived_its_lease_is_not_honoured() {
        let t = testing::app();
        let lock = Lockout::pin(&t.app, &user());
        let slot = lock.take(&t.app, None).await.unwrap_or_else(|e| unreachable!("{e}"));
        t.clock.advance(LEASE_SECONDS);
        assert!(matches!(lock.still_held(&t.app, &slot), Err(Error::Unavailable(_))));
        assert!(matches!(lock.fail(&t.app, &slot).await, Error::Unavailable(_)));
    }

    #[tokio::test]
    async fn attempts_that_read_the_same_state_never_hold_one_slot() {
        let t = testing::app();
        let lock = Lockout::pin(&t.app, &user());
        // Every attempt starts from the same stale read (no item): those
        // that pick a slot taken meanwhile fail their condition and retry.
        let mut held = Vec::new();
        for _ in 0..5 {
            let slot = lock.take(&t.app, None).await.unwrap_or_else(|e| unreachable!("{e}"));
            held.push(slot.index);
        }
        held.sort_unstable();
        assert_eq!(held, [0, 1, 2, 3, 4]);
        assert!(matches!(
            lock.take(&t.app, None).await,
            Err(Error::AccountLocked { .. })
        ));
    }
}
