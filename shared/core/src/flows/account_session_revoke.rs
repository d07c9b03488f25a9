//! `DELETE /api/v1/account/sessions/{id}` (Bearer): signs one of the
//! user's devices out.

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::ids::SessionId;
use crate::model::keys::session_key;
use crate::model::records::Session;
use crate::services::principal::signed_in;
use crate::services::sessions::end_session;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    events: true,
    ..Needs::NOTHING
};

/// The request, checked: the path's session id.
pub struct Request {
    pub sid: SessionId,
}

impl Request {
    pub fn parse(id: Option<&str>) -> Result<Self> {
        let sid = id
            .and_then(|s| SessionId::parse(s).ok())
            .ok_or_else(|| Error::field("id", "must be a session id (ses_…)"))?;
        Ok(Self { sid })
    }
}

/// The access token is checked first (no token is a 401, whatever the path).
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<()> {
    let p = signed_in(app, token).await?;
    let sid = req?.sid;
    let now = app.now();
    let target: Option<Session> = if sid == p.session.sid {
        Some(p.session.clone())
    } else {
        app.db.get(&session_key(&p.user.id, &sid), now).await?
    };
    let target = target
        .filter(|s| s.valid_for(&p.user))
        .ok_or(Error::NotFound("No such session"))?;
    end_session(app, &p.user, &target, "revoked").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn another_user_s_session_is_not_found() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let b = testing::signed_up(&t.app, "+255745051251", "e").await;
        let e = run(
            &t.app,
            Some(&a.access_token),
            Request::parse(Some(b.session.sid.as_str())),
        )
        .await;
        assert_eq!(e.err().map(|e| e.code()), Some("NOT_FOUND"));
        run(
            &t.app,
            Some(&b.access_token),
            Request::parse(Some(b.session.sid.as_str())),
        )
        .await
        .unwrap();
    }
}
