//! Invites (docs/DESIGN.md §6): an integrator invites a phone number that
//! is not a user yet ([`crate::flows::invites_create`]); when that number
//! finishes primary onboarding, each live invite for it is claimed — deleted
//! in the onboarding's own transaction, then announced as an
//! `invite.claimed` event with the invite's metadata and the new user.

use serde_json::json;
use tracing::info;

use crate::App;
use crate::base::error::Result;
use crate::base::time::fmt_time;
use crate::model::keys::{invite_key, invite_partition};
use crate::model::records::{InviteRecord, User, from_item, is_live};
use crate::model::table::{Query, Write};
use crate::ports::events::{Event, EventType};
use crate::services::events::emit;

/// How long an invite can be claimed.
pub const INVITE_TTL: i64 = 30 * 24 * 3600;
/// How long an invite may stay "being sent" before a repeat may send it
/// again (a request that stored it and then died).
pub const SENDING_GRACE: i64 = 60;

/// The live invites of `e164` (read before primary onboarding commits).
pub async fn pending(app: &App, e164: &str) -> Result<Vec<InviteRecord>> {
    let now = app.now();
    let page = app
        .db
        .query(Query {
            index: None,
            pk: invite_partition(e164),
            sk_prefix: None,
            forward: true,
            limit: 25,
            start: None,
        })
        .await?;
    let invites: Vec<InviteRecord> = page
        .items
        .into_iter()
        .filter(|i| is_live(i, now))
        .map(from_item)
        .collect::<Result<_>>()?;
    // An invite whose message never went out was never received.
    Ok(invites.into_iter().filter(|i| !i.sending).collect())
}

/// The writes that delete claimed invites (in onboarding's transaction).
pub fn claim_writes(invites: &[InviteRecord]) -> Vec<Write> {
    invites
        .iter()
        .map(|i| Write::Delete {
            key: invite_key(&i.phone_number, &i.key_id),
            cond: None,
        })
        .collect()
}

/// One `invite.claimed` event per claimed invite.
pub async fn announce_claims(app: &App, user: &User, invites: &[InviteRecord]) -> Result<()> {
    for i in invites {
        let data = json!({
            "invite_id": i.invite_id,
            "key_id": i.key_id,
            "metadata": i.metadata,
            "invited_at": fmt_time(i.created_at),
            "sandbox": i.sandbox,
        });
        info!(invite = %i.invite_id, user = %user.id, "invite claimed");
        emit(app, Event::new(EventType::InviteClaimed, Some(user), data, app.now())).await?;
    }
    Ok(())
}
