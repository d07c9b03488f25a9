//! `GET /api/v1/users/{id}` (API key, scope `users:read`): the user object
//! `{id, phone_number, country_code}`; every lookup is logged with the key
//! that asked.

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::ids::UserId;
use crate::model::keys::user_key;
use crate::model::records::{User, UserObject};
use crate::services::apikeys::Integrator;
use crate::services::integrator::looked_up;

pub const NEEDS: Needs = Needs {
    store: true,
    api_key_pepper: true,
    ..Needs::NOTHING
};

/// The request, checked: the path's user id.
pub struct Request {
    pub id: UserId,
}

impl Request {
    pub fn parse(id: Option<&str>) -> Result<Self> {
        let id = UserId::parse(id.unwrap_or("")).map_err(|_| Error::field("id", "must be a user id (usr_…)"))?;
        Ok(Self { id })
    }
}

pub async fn run(app: &App, caller: &Integrator, req: Request) -> Result<UserObject> {
    let user: Option<User> = app.db.get(&user_key(&req.id), app.now()).await?;
    looked_up(caller, "id", user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_user_is_found_by_id_and_a_stranger_is_not() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let found = run(
            &t.app,
            &testing::integrator(),
            Request::parse(Some(a.session.user_id.as_str())).unwrap(),
        )
        .await;
        assert_eq!(found.unwrap().phone_number, "+255745051250");
        let other = UserId::generate().unwrap();
        let e = run(
            &t.app,
            &testing::integrator(),
            Request::parse(Some(other.as_str())).unwrap(),
        )
        .await;
        assert_eq!(e.err().map(|e| e.code()), Some("NOT_FOUND"));
        assert!(Request::parse(Some("bob")).is_err());
    }
}
