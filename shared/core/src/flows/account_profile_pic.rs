//! `PUT /api/v1/account/profile-pic` (Bearer): an `https://` URL; empty or
//! `null` clears it.

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::base::values::picture_url;
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
    pub url: Option<String>,
}

impl Request {
    pub fn parse(url: Option<&str>) -> Result<Self> {
        Ok(Self { url: picture_url(url)? })
    }
}

/// The access token is checked first (no token is a 401, whatever the body).
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<Updated> {
    let p = signed_in(app, token).await?;
    let url = req?.url;
    let mut user = p.user.clone();
    user.profile_pic = url.clone();
    let ops = vec![match &url {
        Some(u) => Update::set("profile_pic", u.as_str()),
        None => Update::remove("profile_pic"),
    }];
    commit_profile(app, &p, &user, ops, Tx::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_picture_sets_the_flag_and_a_bad_url_is_a_422() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        let set = run(
            &t.app,
            Some(&a.access_token),
            Request::parse(Some("https://cdn.example.com/a.png")),
        )
        .await;
        assert!(set.unwrap().onboarding.profile_pic);
        let bad = run(
            &t.app,
            Some(&a.access_token),
            Request::parse(Some("http://x.com/a.png")),
        )
        .await;
        assert_eq!(bad.err().map(|e| e.code()), Some("VALIDATION_ERROR"));
    }
}
