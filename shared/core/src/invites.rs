//! Invites (SPEC §6, the viral claim flow of `soxara-identity.txt`): an
//! integrator invites a phone number that is not a user yet; it gets a
//! WhatsApp claim link (SMS when WhatsApp fails or is not offered); when
//! that number finishes primary onboarding, each live invite for it becomes
//! an `invite.claimed` event with the invite's metadata and the new user.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | invite | `INVITE#<e164>` | `<key id>` (one per integrator and number) |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::App;
use crate::account::fmt_time;
use crate::apikeys::{Integrator, send_counter};
use crate::auth::{country_served, guard_refusal, guard_writes, limited, send_guard};
use crate::channel::Pipe;
use crate::error::{Error, Result};
use crate::events::{Event, EventType, emit};
use crate::ids::random_base62;
use crate::phone::PhoneNumber;
use crate::repo::{User, from_item, phone_key, to_item};
use crate::sender::InviteMessage;
use crate::table::{Key, Query, Write};

/// How long an invite can be claimed.
pub const INVITE_TTL: i64 = 30 * 24 * 3600;

fn partition(e164: &str) -> String {
    format!("INVITE#{e164}")
}

/// A stored invite.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteRecord {
    pub invite_id: String,
    pub key_id: String,
    pub phone_number: String,
    pub country_code: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub expires_at: i64,
    pub claim_url: String,
    /// Made in sandbox mode (or by a test key): nothing was sent.
    #[serde(default)]
    pub sandbox: bool,
}

/// What `POST /invites` answers.
#[derive(Debug, Serialize)]
pub struct Invited {
    pub invite_id: String,
    pub phone_number: String,
    pub claim_url: String,
    /// `WHATSAPP`, `SMS`, or `SANDBOX` (nothing sent).
    pub delivered_via: &'static str,
    pub expires_at: String,
}

/// `POST /invites`: invites `phone_number` (E.164, not a user yet).
pub async fn create(
    app: &App,
    caller: &Integrator,
    phone_number: Option<&str>,
    metadata: Option<&Value>,
    sandbox_mode: Option<&Value>,
    locale: &str,
) -> Result<Invited> {
    let (mut ph, mut md, mut sb) = (None, None, None);
    crate::auth::all_fields([
        crate::auth::field(
            &mut ph,
            crate::auth::required(phone_number, "phone_number").and_then(|raw| {
                let p = PhoneNumber::parse_field(raw, "phone_number", None, |n| app.settings.is_test_number(n))?;
                if country_served(app, &p) {
                    Ok(p)
                } else {
                    Err(Error::field("phone_number", "numbers of this country are not served"))
                }
            }),
        ),
        crate::auth::field(&mut md, crate::integrator::parse_metadata(metadata)),
        crate::auth::field(
            &mut sb,
            match sandbox_mode {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(Error::field("sandbox_mode", "must be true or false")),
            },
        ),
    ])?;
    let (Some(phone), Some(metadata), Some(sandbox)) = (ph, md, sb) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let sandbox = sandbox || caller.test || app.settings.delivery.senders == crate::config::SenderMode::None;
    let template = app
        .settings
        .invite_url_template
        .clone()
        .ok_or_else(|| Error::internal("INVITE_URL_TEMPLATE is not set: invites are off"))?;
    let now = app.now();
    if app.db.get_item(&phone_key(phone.e164()), now).await?.is_some() {
        return Err(Error::Conflict("This phone number is already a user"));
    }
    let invite_id = format!("inv_{}", random_base62()?);
    let claim_url = template.replace("{invite_id}", &invite_id);
    let record = InviteRecord {
        invite_id: invite_id.clone(),
        key_id: caller.key_id.clone(),
        phone_number: phone.e164().to_owned(),
        country_code: phone.country().to_owned(),
        metadata,
        created_at: now,
        expires_at: now + INVITE_TTL,
        claim_url: claim_url.clone(),
        sandbox,
    };
    let key = Key::new(partition(phone.e164()), caller.key_id.clone());
    let mut guard = Vec::new();
    if !sandbox && app.settings.limits.enabled {
        guard.push((send_counter(app, &caller.key_id, now), true));
        if limited(app, phone.e164()) {
            // Per phone, country and breaker; not per IP (integrators' servers).
            guard.extend(send_guard(app, phone.e164(), "", None, now).await?);
        }
    }
    // The budgets first (a refusal sends nothing), then the link, then the
    // invite: an undelivered invite leaves any earlier one of this
    // integrator for the number as it was.
    if !guard.is_empty() {
        app.db
            .transact(guard_writes(&guard))
            .await
            .map_err(|e| guard_refusal(app, &e, &guard, 0, phone.country(), now).unwrap_or_else(|| Error::from(e)))?;
    }
    let delivered_via = if sandbox {
        "SANDBOX"
    } else {
        match deliver(app, phone.e164(), &claim_url, locale).await {
            Some(p) => p.as_str(),
            None => return Err(Error::DeliveryFailed),
        }
    };
    // This integrator's earlier invite of the number is replaced.
    app.db.put(to_item(&key, &record)?, None).await?;
    info!(key_id = %caller.key_id, invite = %invite_id, phone = %phone, delivered_via, "invite sent");
    Ok(Invited {
        invite_id,
        phone_number: record.phone_number,
        claim_url,
        delivered_via,
        expires_at: fmt_time(record.expires_at),
    })
}

/// WhatsApp first (when the deployment offers it), SMS as the fallback.
async fn deliver(app: &App, to: &str, link: &str, locale: &str) -> Option<Pipe> {
    let mut pipes = Vec::new();
    if app.settings.channels.contains(&Pipe::Whatsapp) {
        pipes.push(Pipe::Whatsapp);
    }
    if app.settings.channels.contains(&Pipe::Sms) {
        pipes.push(Pipe::Sms);
    }
    for pipe in pipes {
        let msg = InviteMessage {
            pipe,
            to: to.to_owned(),
            link: link.to_owned(),
            locale: locale.to_owned(),
        };
        match app.sender.send_invite(&msg).await {
            Ok(()) => return Some(pipe),
            Err(e) => warn!(pipe = pipe.as_str(), error = %e, "invite delivery failed"),
        }
    }
    None
}

/// The live invites of `e164` (read before primary onboarding commits).
pub async fn pending(app: &App, e164: &str) -> Result<Vec<InviteRecord>> {
    let now = app.now();
    let page = app
        .db
        .query(Query {
            index: None,
            pk: partition(e164),
            sk_prefix: None,
            forward: true,
            limit: 25,
            start: None,
        })
        .await?;
    page.items
        .into_iter()
        .filter(|i| crate::repo::is_live(i, now))
        .map(from_item)
        .collect()
}

/// The writes that delete claimed invites (in onboarding's transaction).
pub fn claim_writes(invites: &[InviteRecord]) -> Vec<Write> {
    invites
        .iter()
        .map(|i| Write::Delete {
            key: Key::new(partition(&i.phone_number), i.key_id.clone()),
            cond: None,
        })
        .collect()
}

/// One `invite.claimed` event per claimed invite.
pub async fn announce_claims(app: &App, user: &User, invites: &[InviteRecord]) {
    for i in invites {
        let data = json!({
            "invite_id": i.invite_id,
            "key_id": i.key_id,
            "metadata": i.metadata,
            "invited_at": fmt_time(i.created_at),
            "sandbox": i.sandbox,
        });
        info!(invite = %i.invite_id, user = %user.id, "invite claimed");
        emit(app, Event::new(EventType::InviteClaimed, Some(user), data, app.now())).await;
    }
}
