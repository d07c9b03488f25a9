//! `POST /api/v1/auth/password/forgot/verify-otp`: the reset code → a
//! resetToken (10 minutes) for the device the reset started on.

use tracing::info;

use crate::App;
use crate::app::Needs;
use crate::base::error::{Error, Result};
use crate::base::fields::{AllFields, required};
use crate::base::otp::OtpCode;
use crate::base::tokens::{Claims, TokenKind};
use crate::model::claims::{ResetBody, TempBody};
use crate::ports::table::Tx;
use crate::services::flow_tokens::already_used;
use crate::services::otp_sessions::{Purpose, check_code};

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

/// The resetToken.
pub async fn run(app: &App, req: Request) -> Result<String> {
    let now = app.now();
    let claims = req.temp;
    let Some(uid) = claims
        .body
        .uid
        .clone()
        .filter(|_| claims.body.purpose == Purpose::Reset.as_str())
    else {
        return Err(Error::invalid_flow_token("This token cannot be used here"));
    };
    let checked = check_code(
        app,
        Purpose::Reset,
        &claims.body.phone,
        Some(&claims.jti),
        &req.code,
        Vec::new(),
        req.ip.as_deref(),
    )
    .await?;
    let mut tx = Tx::new();
    tx.add_or(checked.consume, already_used);
    app.db.commit(tx).await.map_err(Error::from)?;
    let body = ResetBody {
        phone: claims.body.phone.clone(),
        did: checked.session.device_id.clone(),
    };
    let (reset_token, _) = app.keys()?.issue(TokenKind::Reset, uid.as_str(), body, now)?;
    info!(user = %uid, "password reset code verified");
    Ok(reset_token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_sign_in_temp_token_is_not_a_reset_one() {
        let t = testing::app();
        let (temp, code) = testing::open_sign_in_code(&t.app, "+255745051250", "d").await;
        let req = Request::parse(&t.app, Some(&temp), Some(&code), None).unwrap();
        assert_eq!(run(&t.app, req).await.err().map(|e| e.code()), Some("INVALID_TOKEN"));
    }
}
