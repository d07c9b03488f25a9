//! `PUT /api/v1/account/interests` (Bearer): 0–20 labels (an empty list
//! clears them).

use serde_json::{Value, json};

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::base::values::interests;
use crate::model::table::Update;
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
    pub interests: Vec<String>,
}

impl Request {
    pub fn parse(list: Option<&Value>) -> Result<Self> {
        Ok(Self {
            interests: interests(list)?,
        })
    }
}

/// The access token is checked first (no token is a 401, whatever the body).
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<Updated> {
    let p = signed_in(app, token).await?;
    let list = req?.interests;
    let mut user = p.user.clone();
    user.interests = list.clone();
    let ops = vec![Update::set("interests", json!(list))];
    commit_profile(app, &p, &user, ops, Tx::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn interests_set_the_flag_and_an_empty_list_clears_it() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let list = json!(["Music", "music", "Football"]);
        let set = run(&t.app, Some(&a.access_token), Request::parse(Some(&list)))
            .await
            .unwrap();
        assert!(set.onboarding.interests);
        let cleared = run(&t.app, Some(&a.access_token), Request::parse(Some(&json!([]))))
            .await
            .unwrap();
        assert!(!cleared.onboarding.interests);
    }
}
