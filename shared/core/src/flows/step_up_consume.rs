//! `POST /api/v1/step-up/consume` (API key, scope `step_up`): checks a
//! user's stepUpToken once — the user and the scope the PIN allowed; 403
//! `TOKEN_ALREADY_USED` the second time, 403 `INVALID_TOKEN` for a bad or
//! expired one or one whose session has ended.

use serde::Serialize;
use serde_json::Value;
use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::required;
use crate::base::ids::UserId;
use crate::base::time::fmt_time;
use crate::base::tokens::{Claims, TokenKind};
use crate::model::claims::StepUpBody;
use crate::model::keys::{jti_key, session_key, user_key};
use crate::model::records::{Session, User, UserObject, from_item, to_item};
use crate::model::table::{Cond, EXPIRES_AT, Item, TableError};
use crate::services::apikeys::Integrator;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    api_key_pepper: true,
    ..Needs::NOTHING
};

/// The request, checked: a step-up token is present.
pub struct Request {
    pub token: String,
}

impl Request {
    pub fn parse(token: Option<&str>) -> Result<Self> {
        Ok(Self {
            token: required(token, "token")?.to_owned(),
        })
    }
}

/// What the step-up allowed.
#[derive(Debug, Serialize)]
pub struct Consumed {
    pub user: UserObject,
    pub scope: String,
    pub issued_at: String,
}

/// Checks a user's stepUpToken once: the user and the scope the PIN
/// allowed; 403 `TOKEN_ALREADY_USED` the second time, 403 `INVALID_TOKEN`
/// for a bad or expired one or one whose session has ended.
pub async fn run(app: &App, caller: &Integrator, req: Request) -> Result<Consumed> {
    let now = app.now();
    let claims: Claims<StepUpBody> = app.keys()?.verify(TokenKind::StepUp, &req.token, now)?;
    let uid = UserId::parse(&claims.sub).map_err(|_| Error::invalid_flow_token("Invalid step-up token"))?;
    let found = app
        .db
        .batch_get(
            &[
                jti_key(&claims.jti),
                user_key(&uid),
                session_key(&uid, &claims.body.sid),
            ],
            now,
        )
        .await?;
    let mut it = found.into_iter();
    if it.next().flatten().is_some() {
        return Err(Error::TokenAlreadyUsed);
    }
    let user: Option<User> = it.next().flatten().map(from_item).transpose()?;
    let session: Option<Session> = it.next().flatten().map(from_item).transpose()?;
    let (Some(user), Some(session)) = (user, session) else {
        return Err(Error::invalid_flow_token("This step-up token no longer stands"));
    };
    if !session.valid_for(&user) {
        return Err(Error::invalid_flow_token("This step-up token no longer stands"));
    }
    let mut used = Item::new();
    used.insert(EXPIRES_AT.into(), Value::from(claims.exp));
    used.insert("consumed_by".into(), Value::String(caller.key_id.clone()));
    app.db
        .put(to_item(&jti_key(&claims.jti), &used)?, Some(Cond::absent_at(now)))
        .await
        .map_err(|e| match e {
            TableError::ConditionFailed => Error::TokenAlreadyUsed,
            other => other.into(),
        })?;
    info!(key_id = %caller.key_id, user = %user.id, scope = %claims.body.scope, "step-up consumed");
    Ok(Consumed {
        user: UserObject::from(&user),
        scope: claims.body.scope,
        issued_at: fmt_time(claims.iat),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_step_up_token_is_consumed_once() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let body = StepUpBody {
            scope: "payments:send".into(),
            sid: a.session.sid.clone(),
        };
        let (tok, _) = t
            .app
            .keys()
            .unwrap()
            .issue(TokenKind::StepUp, a.session.user_id.as_str(), body, t.app.now())
            .unwrap();
        let caller = testing::integrator();
        let out = run(&t.app, &caller, Request::parse(Some(&tok)).unwrap()).await.unwrap();
        assert_eq!(out.scope, "payments:send");
        let again = run(&t.app, &caller, Request::parse(Some(&tok)).unwrap()).await;
        assert_eq!(again.err().map(|e| e.code()), Some("TOKEN_ALREADY_USED"));
    }
}
