//! Sessions (docs/DESIGN.md §3): one device's sign-in is a session with a
//! family of rotating refresh tokens; opening one also makes the device
//! known (its deviceToken), and ending one revokes the family.

use serde_json::json;
use tracing::info;

use crate::App;
use crate::base::error::{Error, Result};
use crate::base::ids::SessionId;
use crate::base::tokens::{DeviceToken, REFRESH_TTL, RefreshToken, TokenKind};
use crate::base::values::Platform;
use crate::model::claims::AccessBody;
use crate::model::keys::{device_key, refresh_key, session_key, user_key};
use crate::model::records::{KnownDevice, RT_ACTIVE, RefreshRecord, Session, User, from_item, put_new, to_item};
use crate::model::table::{Cond, Item, Update, Write};
use crate::ports::events::{Event, EventType};
use crate::services::events::emit;
use crate::services::tiers::tier_of_user;

/// An access token, the refresh token of its session and the device's
/// new deviceToken.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub session: Session,
    /// Proves the device known at its next password or OAuth sign-in.
    /// `None` on a refresh (the device keeps the one it has).
    pub device_token: Option<DeviceToken>,
}

/// Where a sign-in happens.
#[derive(Clone, Debug, Default)]
pub struct DeviceInfo {
    pub device_id: String,
    pub device_name: Option<String>,
    pub platform: Option<Platform>,
}

/// Writes that open a new session for `user` on `device` (and mark the
/// device known), and its tokens.
pub fn session_writes(
    app: &App,
    user: &User,
    device: &DeviceInfo,
    amr: Vec<String>,
    now: i64,
) -> Result<(Vec<Write>, Tokens)> {
    let sid = SessionId::generate()?;
    let refresh = RefreshToken::generate()?;
    let session = Session {
        sid: sid.clone(),
        user_id: user.id.clone(),
        device_id: device.device_id.clone(),
        device_name: device.device_name.clone(),
        platform: device.platform,
        amr,
        created_at: now,
        last_used_at: now,
        current_rt: refresh.hash(),
        revoked: false,
        expires_at: now + REFRESH_TTL,
        epoch: user.session_epoch,
        auth_time: now,
    };
    let record = RefreshRecord {
        sid: sid.clone(),
        user_id: user.id.clone(),
        status: RT_ACTIVE.into(),
        rotated_at: None,
        expires_at: now + REFRESH_TTL,
    };
    let device_token = DeviceToken::generate()?;
    let writes = vec![
        put_new(&session_key(&user.id, &sid), &session, now)?,
        put_new(&refresh_key(&session.current_rt), &record, now)?,
        known_device_write(app, user, &device.device_id, &device_token, now)?,
    ];
    let access_token = access_token(app, user, &session, now)?;
    Ok((
        writes,
        Tokens {
            access_token,
            refresh_token: refresh,
            expires_in: TokenKind::Access.ttl(),
            session,
            device_token: Some(device_token),
        },
    ))
}

/// The write that makes `device_id` known for `user` until
/// `DEVICE_TRUST_DAYS` from now, to whoever presents `token` (its hash
/// replaces the previous one: a deviceToken rotates at every sign-in).
pub fn known_device_write(app: &App, user: &User, device_id: &str, token: &DeviceToken, now: i64) -> Result<Write> {
    let device = KnownDevice {
        device_id: device_id.to_owned(),
        last_seen: now,
        expires_at: now + app.settings.device_trust,
        token_hash: Some(token.hash()),
    };
    Ok(Write::Put {
        item: to_item(&device_key(&user.id, device_id), &device)?,
        cond: None,
    })
}

/// Whether the known-device item `item` (read under the user and the
/// request's deviceId) vouches for the request: it is live and holds the
/// hash of the deviceToken `presented`. A missing or malformed token is an
/// unknown device, not an error.
pub fn device_proven(item: Option<Item>, presented: Option<&str>) -> Result<bool> {
    let (Some(item), Some(token)) = (item, presented.and_then(DeviceToken::parse)) else {
        return Ok(false);
    };
    let device: KnownDevice = from_item(item)?;
    Ok(device.token_hash.is_some_and(|h| token.matches(&h)))
}

/// A signed access token for `user` in `session`.
pub fn access_token(app: &App, user: &User, session: &Session, now: i64) -> Result<String> {
    let body = AccessBody {
        phone: user.phone.clone(),
        ctry: user.country.clone(),
        tier: tier_of_user(app, user),
        sid: session.sid.clone(),
        amr: session.amr.clone(),
        onb: user.flags(),
        auth_time: session.auth_time,
    };
    Ok(app.keys()?.issue(TokenKind::Access, user.id.as_str(), body, now)?.0)
}

/// Revokes a session family: marks the session revoked and deletes its live
/// refresh token.
pub async fn revoke_family(app: &App, session: &Session) -> Result<()> {
    app.db
        .transact(vec![
            Write::Update {
                key: session_key(&session.user_id, &session.sid),
                ops: vec![Update::set("revoked", true)],
                cond: Some(Cond::Exists),
            },
            Write::Delete {
                key: refresh_key(&session.current_rt),
                cond: None,
            },
        ])
        .await?;
    Ok(())
}

/// Ends `session` (logout, a revoked device): its family is revoked and
/// `session.revoked` is published with `reason`.
pub async fn end_session(app: &App, user: &User, session: &Session, reason: &str) -> Result<()> {
    revoke_family(app, session).await?;
    info!(user = %user.id, sid = %session.sid, reason, "session revoked");
    let data = json!({"session_id": session.sid, "reason": reason});
    emit(app, Event::new(EventType::SessionRevoked, Some(user), data, app.now())).await?;
    Ok(())
}

/// The 401 of a refresh token that is unknown, expired or revoked.
pub fn refresh_invalid() -> Error {
    Error::invalid_session_token("Refresh token invalid, expired or revoked")
}

/// A presented refresh token (field `refreshToken`): a missing one is as
/// invalid as a wrong one (401).
pub fn presented_refresh(token: Option<&str>) -> Result<RefreshToken> {
    RefreshToken::parse(crate::base::fields::required(token, "refreshToken").map_err(|_| refresh_invalid())?)
}

/// The record of the refresh token `hash`, its session and its user (one
/// read for the record, one for the other two).
pub async fn refresh_family(app: &App, hash: &str, now: i64) -> Result<(RefreshRecord, Session, Option<User>)> {
    let record: RefreshRecord = app.db.get(&refresh_key(hash), now).await?.ok_or_else(refresh_invalid)?;
    let mut found = app
        .db
        .batch_get(
            &[session_key(&record.user_id, &record.sid), user_key(&record.user_id)],
            now,
        )
        .await?
        .into_iter();
    let session: Session = found
        .next()
        .flatten()
        .map(from_item)
        .transpose()?
        .ok_or_else(refresh_invalid)?;
    let user: Option<User> = found.next().flatten().map(from_item).transpose()?;
    Ok((record, session, user))
}
