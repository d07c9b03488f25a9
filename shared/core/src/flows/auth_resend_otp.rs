//! `POST /api/v1/auth/resend-otp`: a new code on the same channel(s); the
//! old code and tempToken die. `RESEND_COOLDOWN_SECONDS` apart, at most
//! `MAX_RESENDS` per session; the wrong-code attempts left carry over.

use tracing::warn;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::ids::random_base62;
use crate::base::tokens::{Claims, TokenKind};
use crate::model::claims::TempBody;
use crate::model::keys::otp_key;
use crate::model::records::OtpSession;
use crate::model::table::{Cond, EXPIRES_AT, Update, Write};
use crate::ports::table::Tx;
use crate::services::flow_tokens::temp_token;
use crate::services::limits::{Guarded, SendFrom, commit_guarded, send_guard};
use crate::services::otp_sessions::{CodeSent, deliver, masked_destination, new_code, session_usable, unusable};

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

/// The request, checked: a tempToken of any purpose.
pub struct Request {
    pub temp: Claims<TempBody>,
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(app: &App, temp: Option<&str>, ip: Option<String>) -> Result<Self> {
        Ok(Self {
            temp: temp_token(app, temp, app.now())?,
            ip,
        })
    }
}

pub async fn run(app: &App, req: Request) -> Result<CodeSent> {
    let now = app.now();
    let claims = req.temp;
    let key = otp_key(&claims.body.purpose, &claims.body.phone);
    let s = &app.settings;
    let session: Option<OtpSession> = app.db.get(&key, now).await?;
    let old = match session {
        Some(o) if o.session_id == claims.jti && !o.consumed && o.attempts_left > 0 => o,
        other => return Err(unusable(other, Some(&claims.jti), now)),
    };
    if old.resends >= s.max_resends {
        return Err(Error::TooManyResends);
    }
    let ready_at = old.sent_at + s.resend_cooldown;
    if now < ready_at {
        return Err(Error::ResendCooldown {
            retry_after: (ready_at - now) as u64,
        });
    }
    let code = new_code(app, &old.phone)?;
    let session_id = random_base62()?;
    let code_hash = app.pepper()?.hash(&session_id, &code);
    let expires_at = now + TokenKind::Temp.ttl();
    // The session keeps the attempts it has left: no room check.
    let from = SendFrom {
        phone: &old.phone,
        device: &old.device_id,
        ip: req.ip.as_deref(),
        attempts: 0,
    };
    let guard = send_guard(app, from, now).await?.without_room();
    let mut tx = Tx::tagged();
    tx.add_or(
        Write::Update {
            key: key.clone(),
            ops: vec![
                Update::set("session_id", session_id.as_str()),
                Update::set("code_hash", code_hash.as_str()),
                Update::set("sent_at", now),
                Update::set("code_expires_at", now + s.otp_ttl),
                Update::set(EXPIRES_AT, expires_at),
                Update::add("resends", 1),
            ],
            cond: Some(
                session_usable(&claims.jti)
                    .and(Cond::lt("resends", s.max_resends))
                    .and(Cond::le("sent_at", now - s.resend_cooldown)),
            ),
        },
        Guarded::Refusal(|| Error::invalid_flow_token("This code session changed. Use the latest code")),
    );
    tx.append(guard.tx());
    commit_guarded(app, tx, &guard, &old.country, now).await?;
    let mut session = old.clone();
    session.session_id = session_id.clone();
    let delivered = deliver(app, &session, old.channel, &code).await?;
    if delivered.is_empty() {
        // Put the previous code back, so the failed resend costs nothing.
        let undo = app
            .db
            .update(
                &key,
                vec![
                    Update::set("session_id", old.session_id.as_str()),
                    Update::set("code_hash", old.code_hash.as_str()),
                    Update::set("sent_at", old.sent_at),
                    Update::set("code_expires_at", old.code_expires_at),
                    Update::set(EXPIRES_AT, old.expires_at),
                    Update::add("resends", -1),
                ],
                Some(Cond::eq("session_id", session_id.as_str())),
            )
            .await;
        if let Err(e) = undo {
            warn!(error = %e, "could not roll back a failed resend");
        }
        return Err(Error::DeliveryFailed);
    }
    let temp_token = crate::services::otp_sessions::temp_token(app, &session, old.user_id.clone(), now)?;
    Ok(CodeSent {
        temp_token,
        masked_destination: masked_destination(&old),
        channel: old.channel,
        delivered,
        expires_in: s.otp_ttl,
        resend_after: s.resend_cooldown,
        resends_left: s.max_resends - old.resends - 1,
        sandbox_otp: s.sandbox.then(|| code.expose().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    const PHONE: &str = "+255745051250";

    #[tokio::test]
    async fn a_resend_waits_for_the_cooldown_then_kills_the_old_code() {
        let t = testing::app();
        let (temp, _) = testing::open_sign_in_code(&t.app, PHONE, "d").await;
        let early = run(&t.app, Request::parse(&t.app, Some(&temp), None).unwrap()).await;
        assert_eq!(early.err().map(|e| e.code()), Some("RESEND_COOLDOWN"));
        t.clock.advance(t.app.settings.resend_cooldown);
        let sent = run(&t.app, Request::parse(&t.app, Some(&temp), None).unwrap())
            .await
            .unwrap();
        assert_ne!(sent.temp_token, temp);
        assert_eq!(sent.resends_left, t.app.settings.max_resends - 1);
        let stale = run(&t.app, Request::parse(&t.app, Some(&temp), None).unwrap()).await;
        assert_eq!(stale.err().map(|e| e.code()), Some("INVALID_TOKEN"));
    }
}
