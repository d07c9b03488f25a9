//! `PUT /api/v1/account/bio` (Bearer): up to 300 characters; empty or
//! `null` clears it.

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::base::values::bio;
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
    pub bio: Option<String>,
}

impl Request {
    pub fn parse(text: Option<&str>) -> Result<Self> {
        Ok(Self { bio: bio(text)? })
    }
}

/// The access token is checked first (no token is a 401, whatever the body).
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<Updated> {
    let p = signed_in(app, token).await?;
    let bio = req?.bio;
    let mut user = p.user.clone();
    user.bio = bio.clone();
    let ops = vec![match &bio {
        Some(b) => Update::set("bio", b.as_str()),
        None => Update::remove("bio"),
    }];
    commit_profile(app, &p, &user, ops, Tx::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_bio_sets_the_flag_and_an_empty_one_clears_it() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let set = run(&t.app, Some(&a.access_token), Request::parse(Some("Hi\nthere")))
            .await
            .unwrap();
        assert!(set.onboarding.bio);
        let cleared = run(&t.app, Some(&a.access_token), Request::parse(Some("  ")))
            .await
            .unwrap();
        assert!(!cleared.onboarding.bio);
    }
}
