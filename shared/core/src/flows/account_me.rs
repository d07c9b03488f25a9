//! `GET /api/v1/account/me` (Bearer): the caller's profile, tier, sign-in
//! methods and onboarding flags.

use serde::Serialize;

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::base::ids::UserId;
use crate::base::mask::mask_phone;
use crate::base::time::fmt_time;
use crate::model::claims::Tier;
use crate::model::records::OnboardingFlags;
use crate::services::principal::signed_in;
use crate::services::profile::AuthMethods;
use crate::services::tiers::tier_of_user;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    ..Needs::NOTHING
};

/// The caller's profile.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: UserId,
    pub phone_number: String,
    pub country_code: String,
    pub masked_phone: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birth_date: Option<String>,
    pub account_tier: Tier,
    pub username: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub bio: Option<String>,
    pub interests: Vec<String>,
    pub profile_pic: Option<String>,
    pub auth_methods: AuthMethods,
    pub onboarding: OnboardingFlags,
    pub created_at: String,
}

pub async fn run(app: &App, token: Option<&str>) -> Result<Profile> {
    let p = signed_in(app, token).await?;
    let u = p.user;
    Ok(Profile {
        masked_phone: mask_phone(&u.phone),
        account_tier: tier_of_user(app, &u),
        auth_methods: AuthMethods::of(&u),
        onboarding: u.flags(),
        created_at: fmt_time(u.created_at),
        email_verified: u.email_verified,
        email: u.email.clone(),
        id: u.id,
        phone_number: u.phone,
        country_code: u.country,
        first_name: u.first_name,
        last_name: u.last_name,
        birth_date: u.birth_date,
        username: u.username,
        bio: u.bio,
        interests: u.interests,
        profile_pic: u.profile_pic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_new_user_is_an_adult_with_only_the_passwordless_method() {
        let t = testing::app();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        let me = run(&t.app, Some(&tokens.access_token)).await.unwrap();
        assert_eq!((me.account_tier, me.first_name.as_deref()), (Tier::Full, Some("Asha")));
        assert!(me.auth_methods.passwordless && !me.auth_methods.password && !me.auth_methods.pin);
        assert!(me.onboarding.primary_complete && !me.onboarding.username);
    }

    #[tokio::test]
    async fn no_token_is_a_401() {
        let t = testing::app();
        assert_eq!(run(&t.app, None).await.err().map(|e| e.code()), Some("UNAUTHORIZED"));
    }
}
