//! `DELETE /api/v1/account/oauth/{provider}` (Bearer): unlinks Google or
//! Apple; `OAUTH_NOT_LINKED` when it is not linked.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::values::Provider;
use crate::model::keys::{oauth_key, user_key};
use crate::model::table::{Cond, Update, Write};
use crate::ports::table::Tx;
use crate::services::oauth::{Linked, attrs, linked};
use crate::services::principal::signed_in;
use crate::services::profile::AuthMethods;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    ..Needs::NOTHING
};

/// The request, checked: the path's provider.
pub struct Request {
    pub provider: Provider,
}

impl Request {
    pub fn parse(provider: Option<&str>) -> Result<Self> {
        Ok(Self {
            provider: Provider::parse(provider.unwrap_or(""), "provider")?,
        })
    }
}

/// The access token is checked first (no token is a 401, whatever the path).
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<Linked> {
    let p = signed_in(app, token).await?;
    let provider = req?.provider;
    let Some(sub) = linked(provider, &p.user).map(str::to_owned) else {
        return Err(Error::OauthNotLinked);
    };
    let (flag, sub_attr) = attrs(provider);
    let mut tx = Tx::new();
    tx.add(Write::Delete {
        key: oauth_key(provider.as_str(), &sub),
        cond: None,
    })
    .add_or(
        Write::Update {
            key: user_key(&p.user.id),
            ops: vec![Update::set(flag, false), Update::remove(sub_attr)],
            cond: Some(Cond::eq(sub_attr, sub.as_str())),
        },
        || Error::OauthNotLinked,
    );
    app.db.commit(tx).await.map_err(Error::from)?;
    let mut user = p.user;
    match provider {
        Provider::Google => user.google = false,
        Provider::Apple => user.apple = false,
    }
    info!(user = %user.id, provider = provider.as_str(), "provider unlinked");
    Ok(Linked {
        provider,
        linked: false,
        auth_methods: AuthMethods::of(&user),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_linked_provider_unlinks_once() {
        let (t, _) = testing::app_with_fake_providers();
        let tokens = testing::signed_up(&t.app, "+255745051250", "d").await;
        testing::link_google(&t.app, &tokens.access_token, "g-1").await.unwrap();
        let out = run(&t.app, Some(&tokens.access_token), Request::parse(Some("google")))
            .await
            .unwrap();
        assert!(!out.linked && !out.auth_methods.google);
        let again = run(&t.app, Some(&tokens.access_token), Request::parse(Some("google"))).await;
        assert_eq!(again.err().map(|e| e.code()), Some("OAUTH_NOT_LINKED"));
    }
}
