//! What operators do with `nambari-admin`: look users up, block and
//! unblock them, and end their sessions. (API keys: [`crate::services::apikeys`].)
//!
//! Blocking and ending sessions move the user's `session_epoch` on: every
//! session opened before is refused from then on (refresh, Bearer routes,
//! step-up), in one write, however many devices there are.

use serde_json::json;
use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::ids::UserId;
use crate::model::keys::user_key;
use crate::model::records::{User, from_item};
use crate::model::table::{Cond, Update};
use crate::ports::events::{Event, EventType};
use crate::services::events::emit;
use crate::services::numbers::parse_e164;

/// What the admin command uses: the table, the API-key pepper (keys),
/// and the events topic.
pub const NEEDS: Needs = Needs {
    store: true,
    api_key_pepper: true,
    events: true,
    ..Needs::NOTHING
};

/// The user named by a user id (`usr_…`) or an E.164 phone number.
pub async fn find_user(app: &App, who: &str) -> Result<User> {
    let now = app.now();
    let who = who.trim();
    let user = if who.starts_with("usr_") {
        let id = UserId::parse(who).map_err(|_| Error::field("user", "is not a user id"))?;
        app.db.get::<User>(&user_key(&id), now).await?
    } else {
        let phone = parse_e164(app, who, "user")?;
        app.db.user_by_phone(phone.e164(), now).await?
    };
    user.ok_or(Error::NotFound("No such user"))
}

async fn update(app: &App, user: &User, ops: Vec<Update>) -> Result<User> {
    let item = app.db.update(&user_key(&user.id), ops, Some(Cond::Exists)).await?;
    from_item(item)
}

/// Blocks `user`: no sign-in, and every session ends now.
pub async fn block(app: &App, user: &User) -> Result<User> {
    let now = app.now();
    let after = update(
        app,
        user,
        vec![Update::set("blocked", true), Update::add("session_epoch", 1)],
    )
    .await?;
    info!(user = %user.id, "user blocked");
    emit(
        app,
        Event::new(EventType::UserBlocked, Some(&after), json!({"by": "admin"}), now),
    )
    .await?;
    emit(
        app,
        Event::new(
            EventType::SessionRevoked,
            Some(&after),
            json!({"reason": "blocked", "all_sessions": true}),
            now,
        ),
    )
    .await?;
    Ok(after)
}

/// Lets a blocked user sign in again (their old sessions stay ended).
pub async fn unblock(app: &App, user: &User) -> Result<User> {
    let after = update(app, user, vec![Update::set("blocked", false)]).await?;
    info!(user = %user.id, "user unblocked");
    Ok(after)
}

/// Ends every session of `user` (they sign in again on each device).
pub async fn revoke_sessions(app: &App, user: &User) -> Result<User> {
    let now = app.now();
    let after = update(app, user, vec![Update::add("session_epoch", 1)]).await?;
    info!(user = %user.id, "every session revoked");
    emit(
        app,
        Event::new(
            EventType::SessionRevoked,
            Some(&after),
            json!({"reason": "admin", "all_sessions": true}),
            now,
        ),
    )
    .await?;
    Ok(after)
}
