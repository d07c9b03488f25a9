//! `POST /api/v1/auth/logout` (Bearer): ends the session of the access
//! token only.

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::services::principal::signed_in;
use crate::services::sessions::end_session;

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    events: true,
    ..Needs::NOTHING
};

pub async fn run(app: &App, token: Option<&str>) -> Result<()> {
    let p = signed_in(app, token).await?;
    end_session(app, &p.user, &p.session, "logout").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn the_access_token_stops_working_with_its_session() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        run(&t.app, Some(&a.access_token)).await.unwrap();
        let again = run(&t.app, Some(&a.access_token)).await;
        assert_eq!(again.err().map(|e| e.code()), Some("INVALID_TOKEN"));
    }
}
