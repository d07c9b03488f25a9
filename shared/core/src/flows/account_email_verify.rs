//! `POST /api/v1/account/email/verify` (Bearer): the code from the email;
//! the email becomes the account's verified (and unique) email.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::otp::OtpCode;
use crate::base::tokens::{Claims, TokenKind};
use crate::model::claims::TempBody;
use crate::model::records::{owner_item, to_item};
use crate::model::table::{Cond, Update, Write};
use crate::ports::table::Tx;
use crate::services::flow_tokens::already_used;
use crate::services::otp_sessions::{Purpose, check_code};
use crate::services::principal::signed_in;
use crate::services::profile::{Updated, commit_profile, email_owner_key};

pub const NEEDS: Needs = Needs {
    store: true,
    signing_keys: true,
    otp_pepper: true,
    ..Needs::NOTHING
};

/// The request, checked.
pub struct Request {
    pub temp: Claims<TempBody>,
    pub code: OtpCode,
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(app: &App, temp: Option<&str>, otp: Option<&str>, ip: Option<String>) -> Result<Self> {
        let (tok, code) = (
            required(temp, "tempToken"),
            required(otp, "otp").and_then(|s| OtpCode::parse(s, 6, "otp")),
        )
            .all()?;
        let temp = app.keys()?.verify(TokenKind::Temp, tok, app.now())?;
        Ok(Self { temp, code, ip })
    }
}

/// The access token is checked first (no token is a 401, whatever the body).
pub async fn run(app: &App, token: Option<&str>, req: Result<Request>) -> Result<Updated> {
    let p = signed_in(app, token).await?;
    let req = req?;
    let now = app.now();
    let claims = req.temp;
    if claims.body.purpose != Purpose::Email.as_str() || claims.body.uid.as_ref() != Some(&p.user.id) {
        return Err(Error::invalid_flow_token("This token cannot be used here"));
    }
    let checked = check_code(
        app,
        Purpose::Email,
        &p.user.phone,
        Some(&claims.jti),
        &req.code,
        Vec::new(),
        req.ip.as_deref(),
    )
    .await?;
    let email = checked.session.destination.clone();
    let mut tx = Tx::new();
    tx.add_or(checked.consume, already_used).add_or(
        Write::Put {
            item: to_item(&email_owner_key(&email), &owner_item(&p.user.id))?,
            cond: Some(Cond::absent_at(now).or(Cond::eq("user_id", p.user.id.as_str()))),
        },
        || Error::Conflict("This email belongs to another account"),
    );
    if let Some(old) = p.user.email.as_deref().filter(|o| !o.eq_ignore_ascii_case(&email)) {
        // Only our own ownership item goes (none at all is fine).
        tx.add(Write::Delete {
            key: email_owner_key(old),
            cond: Some(Cond::NotExists.or(Cond::eq("user_id", p.user.id.as_str()))),
        });
    }
    let mut user = p.user.clone();
    user.email = Some(email.clone());
    user.email_verified = true;
    let ops = vec![
        Update::set("email", email.as_str()),
        Update::set("email_verified", true),
    ];
    let updated = commit_profile(app, &p, &user, ops, tx).await?;
    info!(user = %user.id, "email verified");
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use crate::testing;

    #[tokio::test]
    async fn a_verified_email_sets_the_flag() {
        let t = testing::app();
        let a = testing::signed_up(&t.app, "+255745051250", "d").await;
        testing::verify_email(&t, &a.access_token, "asha@example.com")
            .await
            .unwrap();
        let user = t
            .app
            .db
            .user_by_phone("+255745051250", t.app.now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (user.email.as_deref(), user.email_verified),
            (Some("asha@example.com"), true)
        );
    }
}
