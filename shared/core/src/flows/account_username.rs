//! `PUT /api/v1/account/username` (Bearer): claims a unique
//! (case-insensitive) username, giving up the previous one.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::values::Username;
use crate::model::keys::username_key;
use crate::model::records::{owner_item, to_item};
use crate::model::table::{Cond, Update, Write};
use crate::ports::table::Tx;
use crate::services::principal::signed_in;
use crate::services::profile::{Updated, commit_profile};

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    ..Needs::NOTHING
};

/// The request, checked.
pub struct Request {
    pub username: Username,
}

impl Request {
    pub fn parse(username: Option<&str>) -> Result<Self> {
        Ok(Self {
            username: Username::parse(username)?,
        })
    }
}

/// The access token is checked first (no token is a 401, whatever the body).
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<Updated> {
    let p = signed_in(app, token).await?;
    let name = req?.username;
    let name = name.as_str();
    let now = app.now();
    let mut tx = Tx::new();
    tx.add_or(
        Write::Put {
            item: to_item(&username_key(name), &owner_item(&p.user.id))?,
            cond: Some(Cond::absent_at(now).or(Cond::eq("user_id", p.user.id.as_str()))),
        },
        || Error::Conflict("This username is taken"),
    );
    match p.user.username.as_deref() {
        Some(old) if old != name => {
            tx.add(Write::Delete {
                key: username_key(old),
                cond: Some(Cond::NotExists.or(Cond::eq("user_id", p.user.id.as_str()))),
            });
        }
        _ => {}
    }
    let mut user = p.user.clone();
    user.username = Some(name.to_owned());
    let ops = vec![Update::set("username", name)];
    let updated = commit_profile(app, &p, &user, ops, tx).await?;
    info!(user = %user.id, "username set");
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_username_belongs_to_one_user_whatever_its_case() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let b = testing::signed_up(&t.app, "+255745051251", "e").await;
        run(&t.app, Some(&a.access_token), Request::parse(Some("Asha")))
            .await
            .unwrap();
        let taken = run(&t.app, Some(&b.access_token), Request::parse(Some("asha"))).await;
        assert_eq!(taken.err().map(|e| e.code()), Some("CONFLICT"));
        run(&t.app, Some(&a.access_token), Request::parse(Some("asha_m")))
            .await
            .unwrap();
        assert!(
            run(&t.app, Some(&b.access_token), Request::parse(Some("ASHA")))
                .await
                .is_ok(),
            "given up"
        );
    }
}
