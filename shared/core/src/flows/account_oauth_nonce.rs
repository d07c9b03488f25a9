//! `POST /api/v1/account/oauth/nonce` (Bearer): a single-use nonce (10
//! minutes) for the caller's next link; the app passes it to the
//! provider's sign-in SDK and the idToken comes back carrying it.

use serde::Serialize;
use serde_json::Value;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::ids::random_base62;
use crate::base::values::Provider;
use crate::model::keys::nonce_key;
use crate::model::records::{owner_item, to_item};
use crate::model::table::{Cond, EXPIRES_AT};
use crate::services::oauth::NONCE_TTL;
use crate::services::principal::signed_in;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    oauth: true,
    ..Needs::NOTHING
};

/// A nonce to put in the idToken of a link.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Nonce {
    pub nonce: String,
    pub expires_in: i64,
}

pub async fn run(app: &App, token: Option<&str>) -> Result<Nonce> {
    let p = signed_in(app, token).await?;
    if !app.settings.oauth.any() || app.oauth()?.is_none() {
        return Err(Error::FeatureDisabled(Provider::Google.setting()));
    }
    let now = app.now();
    let nonce = random_base62()?;
    let mut item = owner_item(&p.user.id);
    item.insert(EXPIRES_AT.into(), Value::from(now + NONCE_TTL));
    app.db
        .put(to_item(&nonce_key(&nonce), &item)?, Some(Cond::NotExists))
        .await
        .map_err(Error::from)?;
    Ok(Nonce {
        nonce,
        expires_in: NONCE_TTL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn without_a_provider_the_feature_is_off_and_names_its_setting() {
        let t = testing::app();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        let e = run(&t.app, Some(&tokens.access_token)).await.unwrap_err();
        assert_eq!(e.code(), "FEATURE_DISABLED");
        assert!(e.to_string().contains("GOOGLE_CLIENT_IDS"));
    }

    #[tokio::test]
    async fn each_nonce_is_stored_under_its_hash_for_the_caller() {
        let (t, _) = testing::app_with_fake_providers();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        let n = run(&t.app, Some(&tokens.access_token)).await.unwrap();
        let item = t
            .app
            .db
            .get_item(&nonce_key(&n.nonce), t.app.now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            crate::model::records::owner(&item),
            Some(tokens.session.user_id.clone())
        );
    }
}
