//! The signed-in caller (Bearer access token). Every call checks the
//! access token *and* its session, in the same read as the user: an access
//! token of a revoked session (logout, a revoked device, a password reset,
//! a block) is refused although it has not expired.

use crate::App;
use crate::base::error::{Error, Result};
use crate::base::ids::UserId;
use crate::base::tokens::{Claims, TokenKind};
use crate::model::claims::AccessBody;
use crate::model::keys::{session_key, user_key};
use crate::model::records::{Session, User, from_item};
use crate::model::table::{Item, Key};

/// A caller whose access token and session both still stand.
#[derive(Debug)]
pub struct Principal {
    pub claims: Claims<AccessBody>,
    pub user: User,
    pub session: Session,
}

/// The `Authorization: Bearer` value of a request, if any.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The 401 of an access token whose session no longer stands.
pub fn session_ended() -> Error {
    Error::invalid_session_token("This session has ended. Sign in again")
}

/// Checks an access token and reads its session and user (and `extra`
/// keys) in one round trip: 401 `UNAUTHORIZED` without a token, 401
/// `INVALID_TOKEN` for a bad one or one whose session no longer stands.
pub async fn authenticate(
    app: &App,
    token: Option<&str>,
    extra: impl FnOnce(&UserId) -> Vec<Key>,
) -> Result<(Principal, Vec<Option<Item>>)> {
    let now = app.now();
    let token = token.ok_or(Error::Unauthorized)?;
    let claims: Claims<AccessBody> = app.keys()?.verify(TokenKind::Access, token, now)?;
    let uid = UserId::parse(&claims.sub).map_err(|_| Error::invalid_session_token("Invalid access token"))?;
    let mut keys = vec![session_key(&uid, &claims.body.sid), user_key(&uid)];
    keys.extend(extra(&uid));
    let mut found = app.db.batch_get(&keys, now).await?.into_iter();
    let session: Option<Session> = found.next().flatten().map(from_item).transpose()?;
    let user: Option<User> = found.next().flatten().map(from_item).transpose()?;
    let (Some(session), Some(user)) = (session, user) else {
        return Err(session_ended());
    };
    if !session.valid_for(&user) {
        return Err(session_ended());
    }
    Ok((Principal { claims, user, session }, found.collect()))
}

/// [`authenticate`] without extra reads.
pub async fn signed_in(app: &App, token: Option<&str>) -> Result<Principal> {
    Ok(authenticate(app, token, |_| Vec::new()).await?.0)
}

/// Whether the caller proved the phone with a code in the last
/// `FRESH_AUTH_SECONDS` (the access token's `amr` and `auth_time`).
pub fn fresh_otp(app: &App, p: &Principal) -> bool {
    let b = &p.claims.body;
    b.amr.iter().any(|m| m.starts_with("otp_")) && app.now() - b.auth_time <= app.settings.fresh_auth
}
