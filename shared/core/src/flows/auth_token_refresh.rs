//! `POST /api/v1/auth/token/refresh`: rotates the refresh token. A token
//! that was already rotated revokes its whole family (`TOKEN_REUSED`),
//! unless it comes back within `REFRESH_REUSE_GRACE_SECONDS` of its
//! rotation (a client that lost the answer).

use tracing::warn;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::tokens::{REFRESH_TTL, RefreshToken, TokenKind};
use crate::model::keys::{refresh_key, session_key};
use crate::model::records::{RT_ACTIVE, RT_ROTATED, RefreshRecord, Session, User, put_new};
use crate::model::table::{Cond, EXPIRES_AT, Update, Write};
use crate::ports::events::{Event, EventType};
use crate::ports::table::{Tx, TxError};
use crate::services::events::emit;
use crate::services::sessions::{
    Tokens, access_token, presented_refresh, refresh_family, refresh_invalid, revoke_family,
};
use crate::services::tiers::blocked_until;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    events: true,
    ..Needs::NOTHING
};

/// The request, checked: a well-formed refresh token.
pub struct Request {
    pub refresh: RefreshToken,
}

impl Request {
    pub fn parse(refresh_token: Option<&str>) -> Result<Self> {
        Ok(Self {
            refresh: presented_refresh(refresh_token)?,
        })
    }
}

pub async fn run(app: &App, req: Request) -> Result<Tokens> {
    let now = app.now();
    let hash = req.refresh.hash();
    let (record, session, user) = refresh_family(app, &hash, now).await?;
    let user = user.ok_or_else(refresh_invalid)?;
    if !session.valid_for(&user) || blocked_until(app, &user).is_some() {
        return Err(refresh_invalid());
    }
    let within_grace = record.status == RT_ROTATED
        && app.settings.refresh_grace > 0
        && record.rotated_at.is_some_and(|t| now - t <= app.settings.refresh_grace);
    if record.status != RT_ACTIVE && !within_grace {
        warn!(user = %user.id, sid = %session.sid, "refresh token reuse: session revoked");
        revoke_family(app, &session).await?;
        reuse_detected(app, &user, &session, now).await?;
        return Err(Error::TokenReused);
    }
    // Rotate the presented token, or within the grace window its successor.
    // Never the successor otherwise: a request that read the presented token
    // as active before a concurrent rotation must fail its condition (and be
    // reuse), not rotate the token the other request just issued.
    let live = if record.status == RT_ACTIVE {
        hash.clone()
    } else {
        session.current_rt.clone()
    };
    let next = RefreshToken::generate()?;
    let next_hash = next.hash();
    let new_record = RefreshRecord {
        sid: session.sid.clone(),
        user_id: user.id.clone(),
        status: RT_ACTIVE.into(),
        rotated_at: None,
        expires_at: now + REFRESH_TTL,
    };
    // Any of these refused: another request rotated this token first, so
    // the same token was presented twice, which is reuse.
    let mut tx = Tx::tagged();
    tx.add_or(
        Write::Update {
            key: session_key(&user.id, &session.sid),
            ops: vec![
                Update::set("current_rt", next_hash.as_str()),
                Update::set("last_used_at", now),
                Update::set(EXPIRES_AT, now + REFRESH_TTL),
            ],
            cond: Some(Cond::eq("current_rt", live.as_str()).and(Cond::eq("revoked", false))),
        },
        (),
    )
    .add_or(
        Write::Update {
            key: refresh_key(&live),
            ops: vec![Update::set("status", RT_ROTATED), Update::set("rotated_at", now)],
            cond: Some(Cond::eq("status", RT_ACTIVE)),
        },
        (),
    )
    .add_or(put_new(&refresh_key(&next_hash), &new_record, now)?, ());
    match app.db.commit(tx).await {
        Ok(()) => {}
        Err(TxError::Refused(())) => {
            warn!(user = %user.id, sid = %session.sid, "concurrent refresh: session revoked");
            if let Some(current) = app.db.get::<Session>(&session_key(&user.id, &session.sid), now).await? {
                revoke_family(app, &current).await?;
            }
            reuse_detected(app, &user, &session, now).await?;
            return Err(Error::TokenReused);
        }
        Err(TxError::Store(e)) => return Err(e.into()),
    }
    let mut session = session;
    session.current_rt = next_hash;
    session.last_used_at = now;
    let access_token = access_token(app, &user, &session, now)?;
    Ok(Tokens {
        access_token,
        refresh_token: next,
        expires_in: TokenKind::Access.ttl(),
        session,
        device_token: None,
    })
}

/// The `session.reuse_detected` event: a rotated refresh token came back
/// (possible theft); the family is revoked.
async fn reuse_detected(app: &App, user: &User, session: &Session, now: i64) -> Result<()> {
    let data = serde_json::json!({"session_id": session.sid, "device_name": session.device_name});
    emit(app, Event::new(EventType::SessionReuseDetected, Some(user), data, now)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_refresh_token_rotates_once_and_its_reuse_ends_the_family() {
        let t = testing::app();
        let user = testing::signed_up(&t.app, "+255745051250", "d").await;
        let first = user.refresh_token.expose().to_owned();
        let second = run(&t.app, Request::parse(Some(&first)).unwrap()).await.unwrap();
        t.clock.advance(t.app.settings.refresh_grace + 1);
        let reuse = run(&t.app, Request::parse(Some(&first)).unwrap()).await;
        assert_eq!(reuse.err().map(|e| e.code()), Some("TOKEN_REUSED"));
        let after = run(&t.app, Request::parse(Some(second.refresh_token.expose())).unwrap()).await;
        assert_eq!(
            after.err().map(|e| e.code()),
            Some("INVALID_TOKEN"),
            "the family is revoked"
        );
    }

    #[test]
    fn a_missing_or_malformed_token_is_a_401() {
        for t in [None, Some(""), Some("short")] {
            let e = Request::parse(t).err().map(|e| e.code());
            assert_eq!(e, Some("INVALID_TOKEN"), "{t:?}");
        }
    }
}
