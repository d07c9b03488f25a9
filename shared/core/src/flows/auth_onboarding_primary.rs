//! `POST /api/v1/auth/onboarding/primary`: name and birthdate. The first
//! tokens, or `ACCOUNT_BLOCKED` with the date of the `MIN_AGE` birthday
//! under it. Uses the onboardingToken up; claims the number's invites.

use time::Date;
use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::ids::UserId;
use crate::base::time::{anniversary, fmt_date};
use crate::base::tokens::{Claims, TokenKind};
use crate::base::values::{Name, birth_date};
use crate::model::claims::{OnboardingBody, Tier};
use crate::model::keys::{jti_key, user_key};
use crate::model::records::{User, from_item};
use crate::model::table::{Cond, Update, Write};
use crate::ports::events::{Event, EventType};
use crate::ports::table::Tx;
use crate::services::events::emit;
use crate::services::flow_tokens::{already_used, use_jti};
use crate::services::invites::{announce_claims, claim_writes, pending};
use crate::services::sessions::{DeviceInfo, Tokens, session_writes};
use crate::services::tiers::{tier_of, today};

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    events: true,
    ..Needs::NOTHING
};

/// The request as the client sent it.
pub struct Raw<'a> {
    pub onboarding_token: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub birth_date: Option<&'a str>,
}

/// The request, checked.
pub struct Request {
    pub onboarding: Claims<OnboardingBody>,
    pub first: Name,
    pub last: Name,
    pub birth: Date,
}

impl Request {
    pub fn parse(app: &App, raw: Raw<'_>) -> Result<Self> {
        let (tok, first, last, birth) = (
            required(raw.onboarding_token, "onboardingToken"),
            Name::parse(raw.first_name, "firstName"),
            Name::parse(raw.last_name, "lastName"),
            birth_date(raw.birth_date, today(app)),
        )
            .all()?;
        let onboarding = app.keys()?.verify(TokenKind::Onboarding, tok, app.now())?;
        Ok(Self {
            onboarding,
            first,
            last,
            birth,
        })
    }
}

#[derive(Debug)]
pub enum Onboarded {
    Complete {
        user: Box<User>,
        tier: Tier,
        tokens: Box<Tokens>,
    },
    Blocked {
        unblock_date: String,
    },
}

pub async fn run(app: &App, req: Request) -> Result<Onboarded> {
    let now = app.now();
    let claims = req.onboarding;
    let uid = UserId::parse(&claims.sub).map_err(|_| Error::invalid_flow_token("Invalid onboarding token"))?;
    let key = user_key(&uid);
    let (used, user) = {
        let found = app.db.batch_get(&[jti_key(&claims.jti), key.clone()], now).await?;
        let mut it = found.into_iter();
        (it.next().flatten(), it.next().flatten())
    };
    if used.is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let mut user: User = from_item(user.ok_or(Error::NotFound("Account not found"))?)?;
    if user.primary_complete {
        return Err(Error::OnboardingAlreadyComplete);
    }
    let tier = tier_of(app, req.birth);
    let birth = fmt_date(req.birth);
    let blocked = (tier == Tier::Minor)
        .then(|| anniversary(req.birth, app.settings.min_age).map(fmt_date))
        .flatten();
    let (first, last) = (req.first.into_string(), req.last.into_string());
    let mut ops = vec![
        Update::set("first_name", first.as_str()),
        Update::set("last_name", last.as_str()),
        Update::set("birth_date", birth.as_str()),
    ];
    match &blocked {
        Some(d) => ops.push(Update::set("blocked_until", d.as_str())),
        None => ops.push(Update::set("primary_complete", true)),
    }
    let mut tx = Tx::new();
    tx.add_or(use_jti(&claims.jti, claims.exp, now)?, already_used).add_or(
        Write::Update {
            key,
            ops,
            cond: Some(Cond::Exists.and(Cond::ne("primary_complete", true))),
        },
        || Error::OnboardingAlreadyComplete,
    );
    user.first_name = Some(first);
    user.last_name = Some(last);
    user.birth_date = Some(birth);
    if let Some(unblock_date) = blocked {
        app.db.commit(tx).await.map_err(Error::from)?;
        info!(user = %user.id, "primary onboarding blocked by age");
        return Ok(Onboarded::Blocked { unblock_date });
    }
    user.primary_complete = true;
    let device = DeviceInfo {
        device_id: claims.body.did.clone(),
        device_name: claims.body.dname.clone(),
        platform: claims.body.plt,
    };
    let (writes, tokens) = session_writes(app, &user, &device, claims.body.amr.clone(), now)?;
    tx.add_all(writes);
    // Invites of this number are claimed by this onboarding.
    let invites = pending(app, &user.phone).await?;
    tx.add_all(claim_writes(&invites));
    app.db.commit(tx).await.map_err(Error::from)?;
    info!(user = %user.id, "primary onboarding complete");
    let data = serde_json::json!({ "tier": tier });
    emit(app, Event::new(EventType::UserOnboarded, Some(&user), data, now)).await?;
    announce_claims(app, &user, &invites).await?;
    Ok(Onboarded::Complete {
        user: Box::new(user),
        tier,
        tokens: Box::new(tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn raw<'a>(tok: &'a str, birth: &'a str) -> Raw<'a> {
        Raw {
            onboarding_token: Some(tok),
            first_name: Some("Asha"),
            last_name: Some("Mwangi"),
            birth_date: Some(birth),
        }
    }

    #[test]
    fn every_bad_field_is_named_before_the_token_is_read() {
        let t = testing::app();
        let r = Request::parse(
            &t.app,
            Raw {
                onboarding_token: Some("x"),
                first_name: Some("  "),
                last_name: Some("1234"),
                birth_date: Some("3000-01-01"),
            },
        );
        match r.err() {
            Some(Error::Validation(m)) => {
                assert_eq!(
                    m.into_keys().collect::<Vec<_>>(),
                    ["birthDate", "firstName", "lastName"]
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_adult_gets_the_first_tokens_and_the_token_is_single_use() {
        let t = testing::app();
        let tok = testing::onboarding_token(&t.app, "+255745051250", "d").await;
        let out = run(&t.app, Request::parse(&t.app, raw(&tok, "1990-01-01")).unwrap())
            .await
            .unwrap();
        assert!(matches!(out, Onboarded::Complete { tier: Tier::Full, .. }), "{out:?}");
        let again = run(&t.app, Request::parse(&t.app, raw(&tok, "1990-01-01")).unwrap()).await;
        assert_eq!(again.err().map(|e| e.code()), Some("TOKEN_ALREADY_USED"));
    }

    #[tokio::test]
    async fn a_child_is_blocked_until_the_minimum_age_birthday() {
        let t = testing::app();
        let tok = testing::onboarding_token(&t.app, "+255745051250", "d").await;
        let out = run(&t.app, Request::parse(&t.app, raw(&tok, "2020-05-17")).unwrap())
            .await
            .unwrap();
        let want = format!("{}-05-17", 2020 + i32::from(t.app.settings.min_age));
        assert!(
            matches!(out, Onboarded::Blocked { ref unblock_date } if *unblock_date == want),
            "{out:?}"
        );
    }
}
