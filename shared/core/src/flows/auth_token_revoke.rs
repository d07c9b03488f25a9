//! `POST /api/v1/auth/token/revoke`: ends the session the refresh token
//! belongs to. A rotated token ends it too, and answers `TOKEN_REUSED`.

use tracing::{info, warn};

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::tokens::RefreshToken;
use crate::model::records::RT_ACTIVE;
use crate::ports::events::{Event, EventType};
use crate::services::events::emit;
use crate::services::sessions::{presented_refresh, refresh_family, refresh_invalid, revoke_family};

pub const NEEDS: Needs = Needs {
    store: true,
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

pub async fn run(app: &App, req: Request) -> Result<()> {
    let now = app.now();
    let (record, session, user) = refresh_family(app, &req.refresh.hash(), now).await?;
    if session.revoked {
        return Err(refresh_invalid());
    }
    revoke_family(app, &session).await?;
    let data = serde_json::json!({"session_id": session.sid, "reason": "revoke"});
    emit(app, Event::new(EventType::SessionRevoked, user.as_ref(), data, now)).await?;
    if record.status != RT_ACTIVE {
        // A rotated token is reuse here too: the family is ended either way.
        warn!(user = %session.user_id, sid = %session.sid, "rotated refresh token presented to revoke: session revoked");
        return Err(Error::TokenReused);
    }
    info!(user = %session.user_id, sid = %session.sid, "session revoked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_revoked_token_cannot_be_revoked_or_refreshed_again() {
        let t = testing::app();
        let user = testing::signed_up(&t.app, "+255745051250", "d").await;
        let rt = user.refresh_token.expose().to_owned();
        run(&t.app, Request::parse(Some(&rt)).unwrap()).await.unwrap();
        let again = run(&t.app, Request::parse(Some(&rt)).unwrap()).await;
        assert_eq!(again.err().map(|e| e.code()), Some("INVALID_TOKEN"));
    }
}
