//! `POST /api/v1/invites` (API key, scope `invites`): an integrator invites a phone number that is not a user yet; it
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

use serde::Serialize;
use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::App;
use crate::app::Needs;
use crate::base::channel::Pipe;
use crate::base::config::SenderMode;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::ids::random_base62;
use crate::base::phone::PhoneNumber;
use crate::base::time::fmt_time;
use crate::model::keys::{invite_key, phone_key};
use crate::model::records::{InviteRecord, from_item, owner, to_item};
use crate::model::table::{Cond, Update, Write};
use crate::ports::sender::InviteMessage;
use crate::ports::table::Tx;
use crate::services::apikeys::{Integrator, send_counter};
use crate::services::integrator::parse_metadata;
use crate::services::invites::{INVITE_TTL, SENDING_GRACE};
use crate::services::limits::{Guard, Guarded, SendFrom, commit_guarded, send_guard, use_one};
use crate::services::numbers::{country_served, parse_e164};

pub const NEEDS: Needs = Needs {
    store: true,
    api_key_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

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
/// The request, checked.
pub struct Request {
    pub phone: PhoneNumber,
    pub metadata: Map<String, Value>,
    pub sandbox: bool,
    pub locale: String,
}

impl Request {
    pub fn parse(
        app: &App,
        phone_number: Option<&str>,
        metadata: Option<&Value>,
        sandbox_mode: Option<&Value>,
        locale: String,
    ) -> Result<Self> {
        let (phone, metadata, sandbox) = (
            required(phone_number, "phone_number").and_then(|raw| {
                let p = parse_e164(app, raw, "phone_number")?;
                if country_served(app, &p) {
                    Ok(p)
                } else {
                    Err(Error::field("phone_number", "numbers of this country are not served"))
                }
            }),
            parse_metadata(metadata),
            match sandbox_mode {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(Error::field("sandbox_mode", "must be true or false")),
            },
        )
            .all()?;
        Ok(Self {
            phone,
            metadata,
            sandbox,
            locale,
        })
    }
}

/// Invites the request's number (E.164, not a user yet).
pub async fn run(app: &App, caller: &Integrator, req: Request) -> Result<Invited> {
    let (phone, metadata, sandbox, locale) = (req.phone, req.metadata, req.sandbox, req.locale);
    let sandbox = sandbox || caller.test || app.settings.delivery.senders == SenderMode::None;
    let template = app
        .settings
        .invite_url_template
        .clone()
        .ok_or(Error::FeatureDisabled("INVITE_URL_TEMPLATE"))?;
    let now = app.now();
    // The key's send budget, before the answer says anything about the number.
    if app.settings.limits.enabled {
        use_one(app, &send_counter(app, &caller.key_id, now), phone.country(), now).await?;
    }
    let key = invite_key(phone.e164(), &caller.key_id);
    let mut found = app
        .db
        .batch_get(&[phone_key(phone.e164()), key.clone()], now)
        .await?
        .into_iter();
    let user = found.next().flatten();
    let existing: Option<InviteRecord> = found.next().flatten().map(from_item).transpose()?;
    let user_id = user.as_ref().and_then(owner).map(|u| u.to_string());
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
        Guard::new()
    } else {
        let from = SendFrom {
            phone: phone.e164(),
            device: "",
            ip: None,
            attempts: 0,
        };
        send_guard(app, from, now).await?.without_room()
    };
    let mut tx = Tx::tagged();
    tx.add_or(
        Write::Put {
            item: to_item(&key, &record)?,
            cond: Some(over),
        },
        Guarded::Refusal(|| Error::Conflict("An invite to this number is being sent; retry in a minute")),
    )
    .append(guard.tx());
    commit_guarded(app, tx, &guard, phone.country(), now).await?;
    if sandbox {
        info!(key_id = %caller.key_id, invite = %invite_id, phone = %phone, "sandbox invite kept");
        return Ok(invited(&record, "SANDBOX".into()));
    }
    let mine = Cond::eq("invite_id", invite_id.as_str());
    let Some(pipe) = deliver(app, phone.e164(), &claim_url, &locale).await? else {
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
async fn deliver(app: &App, to: &str, link: &str, locale: &str) -> Result<Option<Pipe>> {
    let sender = app.sender()?;
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
        match sender.send_invite(&msg).await {
            Ok(()) => return Ok(Some(pipe)),
            Err(e) => warn!(pipe = pipe.as_str(), error = %e, "invite delivery failed"),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn without_a_claim_link_template_invites_are_off() {
        let t = testing::app();
        let req = Request::parse(&t.app, Some("+255745051250"), None, None, "en".into()).unwrap();
        let e = run(&t.app, &testing::integrator(), req).await.unwrap_err();
        assert_eq!(e.code(), "FEATURE_DISABLED");
        assert!(e.to_string().contains("INVITE_URL_TEMPLATE"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let t = testing::app();
        let md = Value::from(3);
        let sb = Value::from("yes");
        match Request::parse(&t.app, Some("0745"), Some(&md), Some(&sb), "en".into()).err() {
            Some(Error::Validation(m)) => {
                assert_eq!(
                    m.into_keys().collect::<Vec<_>>(),
                    ["metadata", "phone_number", "sandbox_mode"]
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
