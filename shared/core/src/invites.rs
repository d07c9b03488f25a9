//! Invites: an integrator invites a phone number that is not a user yet; it
//! gets a WhatsApp claim link (SMS when WhatsApp fails or is not offered);
//! when that number finishes primary onboarding, each live invite for it
//! becomes an `invite.claimed` event with the invite's metadata and the new
//! user.
//!
//! An invite answers whether a number is a user (409), so every request —
//! sandbox or not, to a user or not — spends the key's send budget before
//! it answers, and is logged like a user lookup. The invite is stored
//! before its message goes out: a repeated request finds it and sends
//! nothing again (one message per integrator and number while it lives).
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
use crate::auth::{GuardOutcome, SendFrom, country_served, guard_outcome, refused, send_guard};
use crate::channel::Pipe;
use crate::error::{Error, Result};
use crate::events::{Event, EventType, emit};
use crate::ids::random_base62;
use crate::phone::PhoneNumber;
use crate::repo::{User, from_item, phone_key, to_item};
use crate::sender::InviteMessage;
use crate::table::{Cond, Key, Query, TableError, Update, Write};

/// How long an invite can be claimed.
pub const INVITE_TTL: i64 = 30 * 24 * 3600;
/// How long an invite may stay "being sent" before a repeat may send it
/// again (a request that stored it and then died).
pub const SENDING_GRACE: i64 = 60;

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
    /// Stored, its message not (yet) delivered.
    #[serde(default)]
    pub sending: bool,
    /// `WHATSAPP`, `SMS` or `SANDBOX` once delivered.
    #[serde(default)]
    pub delivered_via: Option<String>,
}

/// What `POST /invites` answers.
#[derive(Debug, Serialize)]
pub struct Invited {
    pub invite_id: String,
    pub phone_number: String,
    pub claim_url: String,
    /// `WHATSAPP`, `SMS`, or `SANDBOX` (nothing sent).
    pub delivered_via: String,
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
        .ok_or(Error::FeatureDisabled("INVITE_URL_TEMPLATE"))?;
    let now = app.now();
    // The key's send budget, before the answer says anything about the number.
    if app.settings.limits.enabled {
        let c = send_counter(app, &caller.key_id, now);
        app.db.transact(vec![c.increment(1, 60)]).await.map_err(|e| match e {
            TableError::TransactionCanceled(ref v) if v.first() == Some(&true) => {
                refused(app, &c, phone.country(), now)
            }
            other => Error::from(other),
        })?;
    }
    let key = Key::new(partition(phone.e164()), caller.key_id.clone());
    let mut found = app
        .db
        .batch_get(&[phone_key(phone.e164()), key.clone()], now)
        .await?
        .into_iter();
    let user = found.next().flatten();
    let existing: Option<InviteRecord> = found.next().flatten().map(from_item).transpose()?;
    let user_id = user
        .as_ref()
        .and_then(|i| i.get("user_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    info!(key_id = %caller.key_id, by = "invite", user = ?user_id, "user lookup");
    if user.is_some() {
        return Err(Error::Conflict("This phone number is already a user"));
    }
    if let Some(e) = &existing {
        if let (false, Some(via)) = (e.sending, &e.delivered_via) {
            info!(key_id = %caller.key_id, invite = %e.invite_id, "invite repeated: the first one stands");
            return Ok(invited(e, via.clone()));
        }
        if e.sending && e.created_at > now - SENDING_GRACE {
            return Err(Error::Conflict(
                "An invite to this number is being sent; retry in a minute",
            ));
        }
    }
    let invite_id = format!("inv_{}", random_base62()?);
    let claim_url = template.replace("{invite_id}", &invite_id);
    let mut record = InviteRecord {
        invite_id: invite_id.clone(),
        key_id: caller.key_id.clone(),
        phone_number: phone.e164().to_owned(),
        country_code: phone.country().to_owned(),
        metadata,
        created_at: now,
        expires_at: now + INVITE_TTL,
        claim_url: claim_url.clone(),
        sandbox,
        sending: !sandbox,
        delivered_via: sandbox.then(|| "SANDBOX".to_owned()),
    };
    // Stored first (only over nothing, or over the one this request read),
    // with the number's send counters: a refusal sends nothing.
    let over = match &existing {
        Some(e) => Cond::absent_at(now).or(Cond::eq("invite_id", e.invite_id.as_str())),
        None => Cond::absent_at(now),
    };
    let guard = if sandbox {
        crate::limits::Guard::new()
    } else {
        let from = SendFrom {
            phone: phone.e164(),
            device: "",
            ip: None,
            attempts: 0,
        };
        send_guard(app, from, now).await?.without_room()
    };
    let mut writes = vec![Write::Put {
        item: to_item(&key, &record)?,
        cond: Some(over),
    }];
    writes.extend(guard.writes());
    app.db.transact(writes).await.map_err(|e| {
        if e.failed_at(0) {
            return Error::Conflict("An invite to this number is being sent; retry in a minute");
        }
        match guard_outcome(app, &e, &guard, 1, phone.country(), now) {
            Some(GuardOutcome::Refused(refusal)) => refusal,
            _ => Error::from(e),
        }
    })?;
    if sandbox {
        info!(key_id = %caller.key_id, invite = %invite_id, phone = %phone, "sandbox invite kept");
        return Ok(invited(&record, "SANDBOX".into()));
    }
    let mine = Cond::eq("invite_id", invite_id.as_str());
    let Some(pipe) = deliver(app, phone.e164(), &claim_url, locale).await else {
        // Nothing reached the number: nothing is kept.
        if let Err(e) = app.db.delete(&key, Some(mine)).await {
            warn!(error = %e, "could not remove an undelivered invite");
        }
        return Err(Error::DeliveryFailed);
    };
    let via = pipe.as_str().to_owned();
    app.db
        .update(
            &key,
            vec![
                Update::set("sending", false),
                Update::set("delivered_via", via.as_str()),
            ],
            Some(mine),
        )
        .await?;
    record.sending = false;
    info!(key_id = %caller.key_id, invite = %invite_id, phone = %phone, delivered_via = %via, "invite sent");
    Ok(invited(&record, via))
}

fn invited(r: &InviteRecord, delivered_via: String) -> Invited {
    Invited {
        invite_id: r.invite_id.clone(),
        phone_number: r.phone_number.clone(),
        claim_url: r.claim_url.clone(),
        delivered_via,
        expires_at: fmt_time(r.expires_at),
    }
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
    let invites: Vec<InviteRecord> = page
        .items
        .into_iter()
        .filter(|i| crate::repo::is_live(i, now))
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
