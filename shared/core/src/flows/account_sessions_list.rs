//! `GET /api/v1/account/sessions` (Bearer): the user's live sessions, most
//! recently used first.

use serde::Serialize;

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::base::ids::SessionId;
use crate::base::time::fmt_time;
use crate::base::values::Platform;
use crate::model::keys::{SESSION_PREFIX, user_partition};
use crate::model::records::{Session, from_item, is_live};
use crate::model::table::Query;
use crate::services::principal::signed_in;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    ..Needs::NOTHING
};

/// One signed-in device, as the user sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSession {
    pub id: SessionId,
    pub device_name: Option<String>,
    pub platform: Option<Platform>,
    pub created_at: String,
    pub last_used_at: String,
    pub current: bool,
}

pub async fn run(app: &App, token: Option<&str>) -> Result<Vec<DeviceSession>> {
    let p = signed_in(app, token).await?;
    let now = app.now();
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = app
            .db
            .query(Query {
                index: None,
                pk: user_partition(&p.user.id),
                sk_prefix: Some(SESSION_PREFIX.into()),
                forward: true,
                limit: 100,
                start,
            })
            .await?;
        for item in page.items.into_iter().filter(|i| is_live(i, now)) {
            let s: Session = from_item(item)?;
            if s.valid_for(&p.user) {
                out.push(s);
            }
        }
        match page.next {
            Some(n) if out.len() < 1000 => start = Some(n),
            _ => break,
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.last_used_at));
    Ok(out
        .into_iter()
        .map(|s| DeviceSession {
            current: s.sid == p.session.sid,
            id: s.sid,
            device_name: s.device_name,
            platform: s.platform,
            created_at: fmt_time(s.created_at),
            last_used_at: fmt_time(s.last_used_at),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn the_caller_s_session_is_marked_current() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let list = run(&t.app, Some(&a.access_token)).await.unwrap();
        assert_eq!(list.len(), 1);
        assert!(list[0].current && list[0].id == a.session.sid);
    }
}
