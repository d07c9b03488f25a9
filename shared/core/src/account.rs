//! The signed-in user's own account (Bearer access token): the profile,
//! secondary onboarding (username, email, interests, bio, profile picture),
//! sessions and logout.
//!
//! Every call checks the access token *and* its session, in the same read
//! as the user, before it looks at the body (no token is a 401, whatever
//! the body): an access token of a revoked session (logout, a revoked
//! device, a password reset, a block) is refused here although it has not
//! expired.

use serde::Serialize;
use serde_json::{Value, json};
use tracing::info;

use crate::App;
use crate::auth::{AccessBody, NewOtp, Sent, Tier, access_token, check_code, open_otp, revoke_family, tier_of_user};
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::events::{Event, EventType, emit};
use crate::ids::{SessionId, UserId};
use crate::mask::mask_phone;
use crate::otp::OtpCode;
use crate::repo::{
    OnboardingFlags, Platform, SESSION_PREFIX, Session, User, email_key, from_item, session_key, user_key, username_key,
};
use crate::table::{Cond, Item, Key, Query, TableError, Update, Write};
use crate::text::has_unsafe_chars;
use crate::tokens::{Claims, TokenKind};

/// The OTP purpose of adding an email.
pub const PURPOSE_EMAIL: &str = "email";

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

fn session_ended() -> Error {
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
    let claims: Claims<AccessBody> = app.keys.verify(TokenKind::Access, token, now)?;
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

// ---------------------------------------------------------------- profile

/// How the user can sign in.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AuthMethods {
    pub passwordless: bool,
    pub password: bool,
    pub google: bool,
    pub apple: bool,
    pub pin: bool,
}

impl AuthMethods {
    pub fn of(user: &User) -> Self {
        Self {
            passwordless: true,
            password: user.has_password,
            google: user.google,
            apple: user.apple,
            pin: user.has_pin,
        }
    }
}

/// `GET /account/me`.
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

/// The caller's profile and onboarding flags.
pub async fn me(app: &App, token: Option<&str>) -> Result<Profile> {
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

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SS` (UTC, like `action_time`).
pub fn fmt_time(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

// ---------------------------------------------------------------- secondary onboarding

/// A profile change: the new access token (same session) with the new flags.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Updated {
    pub access_token: String,
    pub onboarding: OnboardingFlags,
}

/// Applies `ops` to the caller's user item (with `writes` in the same
/// transaction, after it), and re-issues the access token of the session.
/// `user` is the user as it is after the change.
async fn commit_profile(
    app: &App,
    p: &Principal,
    user: &User,
    ops: Vec<Update>,
    mut writes: Vec<Write>,
    refusal: impl Fn(&TableError) -> Option<Error>,
) -> Result<Updated> {
    let now = app.now();
    writes.insert(
        0,
        Write::Update {
            key: user_key(&user.id),
            ops,
            cond: Some(Cond::Exists.and(Cond::eq("session_epoch", p.user.session_epoch))),
        },
    );
    app.db.transact(writes).await.map_err(|e| {
        refusal(&e).unwrap_or_else(|| {
            if e.failed_at(0) {
                // Every session was ended meanwhile (a reset or a block).
                session_ended()
            } else {
                Error::from(e)
            }
        })
    })?;
    Ok(Updated {
        access_token: access_token(app, user, &p.session, now)?,
        onboarding: user.flags(),
    })
}

/// `[a-z0-9_.]{3,30}`, case-insensitive: the lowercase form.
pub fn parse_username(v: Option<&str>) -> Result<String> {
    let s = crate::auth::required(v, "username")?.trim().to_ascii_lowercase();
    let n = s.len();
    if !(3..=30).contains(&n)
        || !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    {
        return Err(Error::field("username", "must be 3–30 characters of a–z, 0–9, _ and ."));
    }
    Ok(s)
}

/// `PUT /account/username`: claims a unique (case-insensitive) username.
pub async fn set_username(app: &App, token: Option<&str>, username: Option<&str>) -> Result<Updated> {
    let name = parse_username(username);
    let p = signed_in(app, token).await?;
    let name = name?;
    let now = app.now();
    let mut owner = Item::new();
    owner.insert("user_id".into(), Value::String(p.user.id.to_string()));
    let claim = Write::Put {
        item: crate::repo::to_item(&username_key(&name), &owner)?,
        cond: Some(Cond::absent_at(now).or(Cond::eq("user_id", p.user.id.as_str()))),
    };
    let mut writes = vec![claim];
    match p.user.username.as_deref() {
        Some(old) if old != name => writes.push(Write::Delete {
            key: username_key(old),
            cond: Some(Cond::NotExists.or(Cond::eq("user_id", p.user.id.as_str()))),
        }),
        _ => {}
    }
    let mut user = p.user.clone();
    user.username = Some(name.clone());
    let ops = vec![Update::set("username", name.as_str())];
    let updated = commit_profile(app, &p, &user, ops, writes, |e| {
        e.failed_at(1).then_some(Error::Conflict("This username is taken"))
    })
    .await?;
    info!(user = %user.id, "username set");
    Ok(updated)
}

/// A list of interests: 0–20 labels of 1–40 characters, duplicates (by
/// case) dropped.
pub fn parse_interests(v: Option<&Value>) -> Result<Vec<String>> {
    let bad = || Error::field("interests", "must be a list of at most 20 labels of 1–40 characters");
    let items = v.and_then(Value::as_array).ok_or_else(bad)?;
    if items.len() > 20 {
        return Err(bad());
    }
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let s = i.as_str().ok_or_else(bad)?.trim();
        if s.is_empty() || s.chars().count() > 40 || has_unsafe_chars(s) {
            return Err(bad());
        }
        if !out.iter().any(|o| o.to_lowercase() == s.to_lowercase()) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// `PUT /account/interests` (an empty list clears them).
pub async fn set_interests(app: &App, token: Option<&str>, interests: Option<&Value>) -> Result<Updated> {
    let list = parse_interests(interests);
    let p = signed_in(app, token).await?;
    let list = list?;
    let mut user = p.user.clone();
    user.interests = list.clone();
    let ops = vec![Update::set("interests", json!(list))];
    commit_profile(app, &p, &user, ops, Vec::new(), |_| None).await
}

/// Up to 300 characters; empty or `null` clears it.
pub fn parse_bio(v: Option<&str>) -> Result<Option<String>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > 300 => Err(Error::field("bio", "must be at most 300 characters")),
        Some(s) if s.chars().any(|c| c.is_control() && c != '\n') || has_unsafe_chars(&s.replace('\n', " ")) => Err(
            Error::field("bio", "must not contain control or direction-override characters"),
        ),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// `PUT /account/bio`.
pub async fn set_bio(app: &App, token: Option<&str>, bio: Option<&str>) -> Result<Updated> {
    let bio = parse_bio(bio);
    let p = signed_in(app, token).await?;
    let bio = bio?;
    let mut user = p.user.clone();
    user.bio = bio.clone();
    let ops = vec![match &bio {
        Some(b) => Update::set("bio", b.as_str()),
        None => Update::remove("bio"),
    }];
    commit_profile(app, &p, &user, ops, Vec::new(), |_| None).await
}

/// An `https://` URL of at most 2048 characters with a host; empty or
/// `null` clears it.
pub fn parse_picture_url(v: Option<&str>) -> Result<Option<String>> {
    let s = match v.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(s) => s,
    };
    let bad = || Error::field("profilePic", "must be an https:// URL of at most 2048 characters");
    let rest = s.strip_prefix("https://").ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_ok = !host.is_empty()
        && !host.contains('@')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if s.len() > 2048 || !host_ok || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok(Some(s.to_owned()))
}

/// `PUT /account/profile-pic`.
pub async fn set_profile_pic(app: &App, token: Option<&str>, url: Option<&str>) -> Result<Updated> {
    let url = parse_picture_url(url);
    let p = signed_in(app, token).await?;
    let url = url?;
    let mut user = p.user.clone();
    user.profile_pic = url.clone();
    let ops = vec![match &url {
        Some(u) => Update::set("profile_pic", u.as_str()),
        None => Update::remove("profile_pic"),
    }];
    commit_profile(app, &p, &user, ops, Vec::new(), |_| None).await
}

// ---------------------------------------------------------------- email

/// A plausible email address (`local@domain.tld`, at most 254
/// characters), with its domain lowercased.
pub fn parse_email(v: Option<&str>) -> Result<String> {
    let s = crate::auth::required(v, "email")?.trim();
    let bad = || Error::field("email", "must be an email address");
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    let domain = domain.to_ascii_lowercase();
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && local.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | ':' | '\\' | '"' | '[' | ']')
        });
    if s.len() > 254 || !labels_ok || !local_ok {
        return Err(bad());
    }
    Ok(format!("{local}@{domain}"))
}

/// The key an email is unique under (the whole address lowercased).
fn email_owner_key(email: &str) -> Key {
    email_key(&email.to_lowercase())
}

/// `POST /account/email/start`: sends a code to the email to add. 409
/// when another user has it.
pub async fn email_start(
    app: &App,
    token: Option<&str>,
    email: Option<&str>,
    locale: String,
    ip: Option<&str>,
) -> Result<Sent> {
    // The token is checked before the body: no token is a 401, not a 422.
    let email = parse_email(email);
    let key = email.as_ref().ok().map(|e| email_owner_key(e));
    let (p, found) = authenticate(app, token, |_| key.into_iter().collect()).await?;
    let email = email?;
    let owner = found.into_iter().next().flatten();
    if owner
        .as_ref()
        .and_then(|i| i.get("user_id"))
        .and_then(Value::as_str)
        .is_some_and(|u| u != p.user.id.as_str())
    {
        return Err(Error::Conflict("This email belongs to another account"));
    }
    if p.user.verified_email().is_some_and(|e| e.eq_ignore_ascii_case(&email)) {
        return Err(Error::Conflict("This email is already verified on the account"));
    }
    let opened = open_otp(
        app,
        NewOtp {
            purpose: PURPOSE_EMAIL,
            phone: &p.user.phone,
            country: &p.user.country,
            user_id: Some(p.user.id.clone()),
            device_id: &p.session.device_id,
            channel: Channel::Email,
            destination: email,
            locale,
            ip,
            max_attempts: None,
        },
        Vec::new(),
        |_| None,
        Vec::new(),
    )
    .await?;
    crate::auth::sent(app, &opened, Some(p.user.id.clone()), app.now())
}

/// `POST /account/email/verify`: the code from the email; the email becomes
/// the account's verified (and unique) email.
pub async fn email_verify(
    app: &App,
    token: Option<&str>,
    temp_token: Option<&str>,
    otp: Option<&str>,
    ip: Option<&str>,
) -> Result<Updated> {
    let p = signed_in(app, token).await?;
    let (mut tok, mut code) = (None, None);
    crate::auth::all_fields([
        crate::auth::field(&mut tok, crate::auth::required(temp_token, "tempToken")),
        crate::auth::field(
            &mut code,
            crate::auth::required(otp, "otp").and_then(|s| OtpCode::parse(s, 6, "otp")),
        ),
    ])?;
    let (Some(tok), Some(code)) = (tok, code) else {
        return Err(Error::internal("parsed fields missing"));
    };
    let now = app.now();
    let claims: Claims<crate::auth::TempBody> = app.keys.verify(TokenKind::Temp, tok, now)?;
    if claims.body.purpose != PURPOSE_EMAIL || claims.body.uid.as_ref() != Some(&p.user.id) {
        return Err(Error::invalid_flow_token("This token cannot be used here"));
    }
    let checked = check_code(
        app,
        PURPOSE_EMAIL,
        &p.user.phone,
        Some(&claims.jti),
        &code,
        Vec::new(),
        ip,
    )
    .await?;
    let email = checked.session.destination.clone();
    let mut owner = Item::new();
    owner.insert("user_id".into(), Value::String(p.user.id.to_string()));
    let mut writes = vec![
        checked.consume,
        Write::Put {
            item: crate::repo::to_item(&email_owner_key(&email), &owner)?,
            cond: Some(Cond::absent_at(now).or(Cond::eq("user_id", p.user.id.as_str()))),
        },
    ];
    if let Some(old) = p.user.email.as_deref().filter(|o| !o.eq_ignore_ascii_case(&email)) {
        // Only our own ownership item goes (none at all is fine).
        writes.push(Write::Delete {
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
    // The user update is write 0 of commit_profile; the code is write 1.
    let updated = commit_profile(app, &p, &user, ops, writes, |e| {
        if e.failed_at(1) {
            Some(Error::TokenAlreadyUsed)
        } else if e.failed_at(2) {
            Some(Error::Conflict("This email belongs to another account"))
        } else {
            None
        }
    })
    .await?;
    info!(user = %user.id, "email verified");
    Ok(updated)
}

// ---------------------------------------------------------------- sessions

/// One signed-in device, as the user sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: SessionId,
    pub device_name: Option<String>,
    pub platform: Option<Platform>,
    pub created_at: String,
    pub last_used_at: String,
    pub current: bool,
}

/// `GET /account/sessions`: the user's live sessions, most recently used first.
pub async fn sessions(app: &App, token: Option<&str>) -> Result<Vec<SessionView>> {
    let p = signed_in(app, token).await?;
    let now = app.now();
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = app
            .db
            .query(Query {
                index: None,
                pk: format!("USER#{}", p.user.id),
                sk_prefix: Some(SESSION_PREFIX.into()),
                forward: true,
                limit: 100,
                start,
            })
            .await?;
        for item in page.items.into_iter().filter(|i| crate::repo::is_live(i, now)) {
            let s: Session = from_item(item)?;
            if s.valid_for(&p.user) {
                out.push(s);
            }
        }
        match page.next {
            Some(n) if out.len() < 1000 => start = Some(n),
            _ => break,
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.last_used_at));
    Ok(out
        .into_iter()
        .map(|s| SessionView {
            current: s.sid == p.session.sid,
            id: s.sid,
            device_name: s.device_name,
            platform: s.platform,
            created_at: fmt_time(s.created_at),
            last_used_at: fmt_time(s.last_used_at),
        })
        .collect())
}

/// `DELETE /account/sessions/{id}`: signs one of the user's devices out.
pub async fn revoke_session(app: &App, token: Option<&str>, id: Option<&str>) -> Result<()> {
    let p = signed_in(app, token).await?;
    let sid = id
        .and_then(|s| SessionId::parse(s).ok())
        .ok_or_else(|| Error::field("id", "must be a session id (ses_…)"))?;
    let now = app.now();
    let target: Option<Session> = if sid == p.session.sid {
        Some(p.session.clone())
    } else {
        app.db.get(&session_key(&p.user.id, &sid), now).await?
    };
    let target = target
        .filter(|s| s.valid_for(&p.user))
        .ok_or(Error::NotFound("No such session"))?;
    end_session(app, &p.user, &target, "revoked").await
}

/// `POST /auth/logout`: ends the session of the access token only.
pub async fn logout(app: &App, token: Option<&str>) -> Result<()> {
    let p = signed_in(app, token).await?;
    end_session(app, &p.user, &p.session, "logout").await
}

async fn end_session(app: &App, user: &User, session: &Session, reason: &str) -> Result<()> {
    revoke_family(app, session).await?;
    info!(user = %user.id, sid = %session.sid, reason, "session revoked");
    let data = json!({"session_id": session.sid, "reason": reason});
    emit(app, Event::new(EventType::SessionRevoked, Some(user), data, app.now())).await;
    Ok(())
}
