//! Plain settings (SPEC §9), read from environment variables by
//! [`Settings::from_lookup`]; each has a default, listed in the README.

use std::collections::HashMap;

use crate::base::channel::{Channel, Pipe};
use crate::base::error::{Error, Result};
use crate::base::phone::Region;
use crate::base::rates::Limits;

/// The longest `WEBOTP_DOMAIN` accepted (keeps every SMS in one segment).
pub const MAX_WEBOTP_DOMAIN_LEN: usize = 50;

/// An Android SMS Retriever app hash is 11 base64 characters.
pub const APP_HASH_LEN: usize = 11;

#[derive(Clone, Debug)]
pub struct Settings {
    /// `STAGE`: dev, staging, prod, … (default `dev`).
    pub stage: String,
    /// `TABLE_NAME` (default `nambari-<stage>`).
    pub table_name: String,
    /// `JWT_ISSUER` (default `nambari`).
    pub issuer: String,
    /// `JWT_AUDIENCE` (default `nambari-apps`).
    pub audience: String,
    /// `SANDBOX`: return codes as `sandboxOtp` (default false; refused in prod).
    pub sandbox: bool,
    /// `DEFAULT_REGION`: accept national formats for this region (default unset).
    pub default_region: Option<Region>,
    /// `TEST_PHONE_NUMBERS`: `+15555550100:123456,…` (default none).
    pub test_numbers: HashMap<String, String>,
    /// `OTP_TTL_SECONDS` (default 120).
    pub otp_ttl: i64,
    /// `OTP_MAX_ATTEMPTS` (default 3).
    pub otp_max_attempts: u32,
    /// `OTP_RESEND_COOLDOWN_SECONDS` (default 60).
    pub resend_cooldown: i64,
    /// `OTP_MAX_RESENDS` (default 5).
    pub max_resends: u32,
    /// `CHANNELS`: the pipes offered, first is primary (default `SMS,WHATSAPP`).
    pub channels: Vec<Pipe>,
    /// `REFRESH_REUSE_GRACE_SECONDS` (default 0, at most 60).
    pub refresh_grace: i64,
    /// `ADULT_AGE` (default 18): FULL tier from this age.
    pub adult_age: u8,
    /// `MIN_AGE` (default 13): blocked below this age.
    pub min_age: u8,
    /// Rate limits and send budgets (see [`Limits`] for each setting).
    pub limits: Limits,
    /// Senders and message settings (see [`Delivery`] for each setting).
    pub delivery: Delivery,
    /// `DEVICE_TRUST_DAYS` (default 90): a device not seen for this long is
    /// unknown again, so a password sign-in on it needs a code.
    pub device_trust: i64,
    /// `FRESH_AUTH_SECONDS` (default 600): a code proved this recently (the
    /// access token's `auth_time`) stands in for the current password or PIN
    /// when changing them.
    pub fresh_auth: i64,
    /// `PASSWORD_MAX_FAILURES` (default 5) wrong passwords lock password
    /// sign-in for `LOCKOUT_SECONDS`.
    pub password_max_failures: u32,
    /// `PIN_MAX_FAILURES` (default 5) wrong PINs lock step-up for `LOCKOUT_SECONDS`.
    pub pin_max_failures: u32,
    /// `LOCKOUT_SECONDS` (default 900).
    pub lockout_seconds: i64,
    /// Google and Apple sign-in (see [`OAuthSettings`]).
    pub oauth: OAuthSettings,
    /// `INVITE_URL_TEMPLATE` (default unset: invites answer 503
    /// `FEATURE_DISABLED`; local mode's default is a link on its own port): the claim link of an invite,
    /// `{invite_id}` replaced, e.g. `https://app.example.com/claim/{invite_id}`.
    pub invite_url_template: Option<String>,
    /// `EVENTS_TOPIC_ARN` (default unset: no events are published).
    pub events_topic_arn: Option<String>,
}

/// The OAuth providers whose idTokens are accepted, each on when it has
/// client ids.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// `GOOGLE_CLIENT_IDS`: accepted `aud` values, comma-separated (default none: Google off).
    pub google_client_ids: Vec<String>,
    /// `APPLE_CLIENT_IDS`: accepted `aud` values (app bundle / services ids; default none: Apple off).
    pub apple_client_ids: Vec<String>,
    /// `GOOGLE_JWKS_URL` (default `https://www.googleapis.com/oauth2/v3/certs`).
    pub google_jwks_url: String,
    /// `APPLE_JWKS_URL` (default `https://appleid.apple.com/auth/keys`).
    pub apple_jwks_url: String,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            google_client_ids: Vec::new(),
            apple_client_ids: Vec::new(),
            google_jwks_url: "https://www.googleapis.com/oauth2/v3/certs".into(),
            apple_jwks_url: "https://appleid.apple.com/auth/keys".into(),
        }
    }
}

impl OAuthSettings {
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self> {
        let d = Self::default();
        let list = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let url = |name: &str, default: String| -> Result<String> {
            match optional(get, name) {
                None => Ok(default),
                Some(u)
                    if u.starts_with("https://")
                        || u.starts_with("http://127.0.0.1")
                        || u.starts_with("http://localhost") =>
                {
                    Ok(u)
                }
                Some(_) => Err(bad(name, "must be an https:// URL")),
            }
        };
        Ok(Self {
            google_client_ids: list("GOOGLE_CLIENT_IDS"),
            apple_client_ids: list("APPLE_CLIENT_IDS"),
            google_jwks_url: url("GOOGLE_JWKS_URL", d.google_jwks_url)?,
            apple_jwks_url: url("APPLE_JWKS_URL", d.apple_jwks_url)?,
        })
    }

    /// Whether any provider is configured.
    pub fn any(&self) -> bool {
        !self.google_client_ids.is_empty() || !self.apple_client_ids.is_empty()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stage: "dev".into(),
            table_name: "nambari-dev".into(),
            issuer: "nambari".into(),
            audience: "nambari-apps".into(),
            sandbox: false,
            default_region: None,
            test_numbers: HashMap::new(),
            otp_ttl: 120,
            otp_max_attempts: 3,
            resend_cooldown: 60,
            max_resends: 5,
            channels: vec![Pipe::Sms, Pipe::Whatsapp],
            refresh_grace: 0,
            adult_age: 18,
            min_age: 13,
            limits: Limits::default(),
            delivery: Delivery::default(),
            device_trust: 90 * 24 * 3600,
            fresh_auth: 600,
            password_max_failures: 5,
            pin_max_failures: 5,
            lockout_seconds: 900,
            oauth: OAuthSettings::default(),
            invite_url_template: None,
            events_topic_arn: None,
        }
    }
}

fn bad(name: &str, why: &str) -> Error {
    Error::internal(format!("setting {name}: {why}"))
}

fn number<T: std::str::FromStr>(name: &str, v: Option<String>, default: T) -> Result<T> {
    match v {
        None => Ok(default),
        Some(s) => s.trim().parse().map_err(|_| bad(name, "must be a number")),
    }
}

fn boolean(name: &str, v: Option<String>, default: bool) -> Result<bool> {
    match v.as_deref().map(str::trim) {
        None => Ok(default),
        Some("1" | "true" | "TRUE" | "yes") => Ok(true),
        Some("0" | "false" | "FALSE" | "no" | "") => Ok(false),
        Some(_) => Err(bad(name, "must be true or false")),
    }
}

impl Settings {
    /// Reads every setting through `get` (e.g. `std::env::var(..).ok()`).
    /// A bad value is an error naming the setting, so a cold start fails
    /// with a readable message.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let d = Settings::default();
        let stage = get("STAGE").unwrap_or(d.stage);
        let sandbox = boolean("SANDBOX", get("SANDBOX"), false)?;
        if sandbox && matches!(stage.as_str(), "prod" | "production") {
            return Err(bad("SANDBOX", "is never allowed in production"));
        }
        let default_region = match get("DEFAULT_REGION").filter(|s| !s.trim().is_empty()) {
            None => None,
            Some(r) => Some(Region::parse(&r).map_err(|_| bad("DEFAULT_REGION", "must be an ISO-3166 alpha-2 code"))?),
        };
        let mut test_numbers = HashMap::new();
        for pair in get("TEST_PHONE_NUMBERS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (phone, code) = pair
                .split_once(':')
                .ok_or_else(|| bad("TEST_PHONE_NUMBERS", "entries are +E164:code"))?;
            let ok_phone = phone.starts_with('+') && phone.len() > 7 && phone[1..].bytes().all(|b| b.is_ascii_digit());
            if !ok_phone || code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("TEST_PHONE_NUMBERS", "entries are +E164:six-digit-code"));
            }
            test_numbers.insert(phone.to_owned(), code.to_owned());
        }
        let channels = match get("CHANNELS") {
            None => d.channels,
            Some(s) => {
                let mut v = Vec::new();
                for p in s.split(',').filter(|p| !p.trim().is_empty()) {
                    let pipe = Pipe::parse(p).ok_or_else(|| bad("CHANNELS", "values are SMS, WHATSAPP"))?;
                    if pipe == Pipe::Email {
                        return Err(bad(
                            "CHANNELS",
                            "EMAIL is offered per user, not as a deployment channel",
                        ));
                    }
                    if !v.contains(&pipe) {
                        v.push(pipe);
                    }
                }
                if v.is_empty() {
                    return Err(bad("CHANNELS", "must name at least one channel"));
                }
                v
            }
        };
        let refresh_grace = number("REFRESH_REUSE_GRACE_SECONDS", get("REFRESH_REUSE_GRACE_SECONDS"), 0i64)?;
        if !(0..=60).contains(&refresh_grace) {
            return Err(bad("REFRESH_REUSE_GRACE_SECONDS", "must be between 0 and 60"));
        }
        let s = Settings {
            table_name: get("TABLE_NAME").unwrap_or_else(|| format!("nambari-{stage}")),
            issuer: get("JWT_ISSUER").unwrap_or(d.issuer),
            audience: get("JWT_AUDIENCE").unwrap_or(d.audience),
            sandbox,
            default_region,
            test_numbers,
            otp_ttl: number("OTP_TTL_SECONDS", get("OTP_TTL_SECONDS"), d.otp_ttl)?,
            otp_max_attempts: number("OTP_MAX_ATTEMPTS", get("OTP_MAX_ATTEMPTS"), d.otp_max_attempts)?,
            resend_cooldown: number(
                "OTP_RESEND_COOLDOWN_SECONDS",
                get("OTP_RESEND_COOLDOWN_SECONDS"),
                d.resend_cooldown,
            )?,
            max_resends: number("OTP_MAX_RESENDS", get("OTP_MAX_RESENDS"), d.max_resends)?,
            channels,
            refresh_grace,
            adult_age: number("ADULT_AGE", get("ADULT_AGE"), d.adult_age)?,
            min_age: number("MIN_AGE", get("MIN_AGE"), d.min_age)?,
            limits: Limits::from_lookup(&get)?,
            delivery: Delivery::from_lookup(&get)?,
            device_trust: number::<i64>("DEVICE_TRUST_DAYS", get("DEVICE_TRUST_DAYS"), 90)? * 24 * 3600,
            fresh_auth: number("FRESH_AUTH_SECONDS", get("FRESH_AUTH_SECONDS"), d.fresh_auth)?,
            password_max_failures: number(
                "PASSWORD_MAX_FAILURES",
                get("PASSWORD_MAX_FAILURES"),
                d.password_max_failures,
            )?,
            pin_max_failures: number("PIN_MAX_FAILURES", get("PIN_MAX_FAILURES"), d.pin_max_failures)?,
            lockout_seconds: number("LOCKOUT_SECONDS", get("LOCKOUT_SECONDS"), d.lockout_seconds)?,
            oauth: OAuthSettings::from_lookup(&get)?,
            invite_url_template: checked(
                &get,
                "INVITE_URL_TEMPLATE",
                |v| {
                    let local = v.starts_with("http://127.0.0.1") || v.starts_with("http://localhost");
                    (v.starts_with("https://") || local) && v.contains("{invite_id}") && v.len() <= 500
                },
                "must be an https:// URL containing {invite_id} (http:// only on 127.0.0.1 or localhost)",
            )?,
            events_topic_arn: checked(
                &get,
                "EVENTS_TOPIC_ARN",
                |v| v.starts_with("arn:") && !v.contains(char::is_whitespace),
                "must be an SNS topic ARN",
            )?,
            stage,
        };
        if !(1..=3650).contains(&(s.device_trust / (24 * 3600))) {
            return Err(bad("DEVICE_TRUST_DAYS", "must be between 1 and 3650"));
        }
        if !(60..=86_400).contains(&s.fresh_auth) {
            return Err(bad("FRESH_AUTH_SECONDS", "must be between 60 and 86400"));
        }
        if s.password_max_failures == 0 || s.pin_max_failures == 0 {
            return Err(bad("PASSWORD_MAX_FAILURES/PIN_MAX_FAILURES", "must be at least 1"));
        }
        if !(60..=86_400).contains(&s.lockout_seconds) {
            return Err(bad("LOCKOUT_SECONDS", "must be between 60 and 86400"));
        }
        if !(30..=900).contains(&s.otp_ttl) {
            return Err(bad("OTP_TTL_SECONDS", "must be between 30 and 900"));
        }
        if s.otp_max_attempts == 0 || s.min_age > s.adult_age {
            return Err(bad("OTP_MAX_ATTEMPTS/MIN_AGE", "out of range"));
        }
        Ok(s)
    }

    pub fn is_test_number(&self, e164: &str) -> bool {
        self.test_numbers.contains_key(e164)
    }

    /// The pipe shown as primary in the channel list.
    pub fn primary_pipe(&self) -> Pipe {
        self.channels.first().copied().unwrap_or(Pipe::Sms)
    }

    /// Whether the deployment offers every pipe of `channel` (EMAIL is per user).
    pub fn offers(&self, channel: Channel) -> bool {
        channel
            .pipes()
            .iter()
            .all(|p| *p == Pipe::Email || self.channels.contains(p))
    }
}

/// How codes leave the service (`SENDERS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderMode {
    /// SMS over SNS, WhatsApp over the Cloud API, email over SES.
    Real,
    /// Codes printed on the terminal (local mode's default).
    Console,
    /// Nothing is sent: only sandbox stages (codes in the response) work.
    None,
}

/// Delivery settings: which senders run and what they need. Each field is
/// one environment variable, listed in the README.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `SENDERS`: `real` (default), `console` (local mode's default) or `none`.
    pub senders: SenderMode,
    /// `SNS_SENDER_ID`: alphanumeric sender id, 1–11 characters (default unset).
    pub sns_sender_id: Option<String>,
    /// `SNS_ORIGINATION_NUMBER`: E.164 number or short code (default unset).
    pub sns_origination_number: Option<String>,
    /// `SES_FROM_ADDRESS`: `no-reply@example.com` or `Name <no-reply@example.com>`.
    pub ses_from_address: Option<String>,
    /// `WHATSAPP_BASE_URL` (default `https://graph.facebook.com`).
    pub whatsapp_base_url: String,
    /// `WHATSAPP_API_VERSION` (default `v23.0`).
    pub whatsapp_api_version: String,
    /// `WHATSAPP_PHONE_NUMBER_ID`: the sending number's id (default unset).
    pub whatsapp_phone_number_id: Option<String>,
    /// `WHATSAPP_TEMPLATE_NAME`: an approved authentication template with a
    /// copy-code button (default `nambari_otp`).
    pub whatsapp_template_name: String,
    /// `WHATSAPP_TEMPLATE_LANGUAGE`: the template's languages, comma-separated
    /// (default `en_US`); the one matching the request's locale is used,
    /// else the first.
    pub whatsapp_template_languages: Vec<String>,
    /// `WHATSAPP_INVITE_TEMPLATE_NAME`: the approved template of invites, with
    /// one body parameter, the claim link (default `nambari_invite`).
    pub whatsapp_invite_template_name: String,
    /// `WEBOTP_DOMAIN`: the domain of the WebOTP line `@<domain> #<code>`,
    /// at most [`MAX_WEBOTP_DOMAIN_LEN`] characters (default unset).
    pub webotp_domain: Option<String>,
    /// `ANDROID_APP_HASH`: the 11-character SMS Retriever hash (default unset).
    pub android_app_hash: Option<String>,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            senders: SenderMode::Real,
            sns_sender_id: None,
            sns_origination_number: None,
            ses_from_address: None,
            whatsapp_base_url: "https://graph.facebook.com".into(),
            whatsapp_api_version: "v23.0".into(),
            whatsapp_phone_number_id: None,
            whatsapp_template_name: "nambari_otp".into(),
            whatsapp_template_languages: vec!["en_US".into()],
            whatsapp_invite_template_name: "nambari_invite".into(),
            webotp_domain: None,
            android_app_hash: None,
        }
    }
}

/// A setting's value, or `None` when unset or blank.
fn optional(get: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `optional`, then checked by `ok`.
fn checked(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    ok: impl Fn(&str) -> bool,
    why: &str,
) -> Result<Option<String>> {
    match optional(get, name) {
        Some(v) if !ok(&v) => Err(bad(name, why)),
        v => Ok(v),
    }
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (7..=15).contains(&d.len()) && !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit()))
}

fn is_email_sender(s: &str) -> bool {
    let addr = match s.rsplit_once('<') {
        Some((_, rest)) => match rest.strip_suffix('>') {
            Some(a) => a,
            None => return false,
        },
        None => s,
    };
    let ok_addr = addr.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains('@') && !addr.contains(char::is_whitespace)
    });
    ok_addr && s.len() <= 320 && !s.chars().any(char::is_control)
}

fn is_domain(s: &str) -> bool {
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok && s.len() <= MAX_WEBOTP_DOMAIN_LEN
}

fn is_whatsapp_language(s: &str) -> bool {
    let (lang, region) = match s.split_once('_') {
        Some((l, r)) => (l, Some(r)),
        None => (s, None),
    };
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Delivery {
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self> {
        let d = Delivery::default();
        let senders = match optional(get, "SENDERS").map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("real") => SenderMode::Real,
            Some("console") => SenderMode::Console,
            Some("none") => SenderMode::None,
            Some(_) => return Err(bad("SENDERS", "must be real, console or none")),
        };
        let base = optional(get, "WHATSAPP_BASE_URL").unwrap_or(d.whatsapp_base_url);
        let base = base.trim_end_matches('/').to_owned();
        let base_ok = (base.starts_with("https://") || base.starts_with("http://"))
            && base.len() > "https://".len()
            && !base.contains(char::is_whitespace);
        if !base_ok {
            return Err(bad("WHATSAPP_BASE_URL", "must be an http(s) URL"));
        }
        let version = optional(get, "WHATSAPP_API_VERSION").unwrap_or(d.whatsapp_api_version);
        let version_ok = version.strip_prefix('v').is_some_and(|v| {
            !v.is_empty()
                && v.split('.').count() <= 2
                && v.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        if !version_ok {
            return Err(bad("WHATSAPP_API_VERSION", "must look like v23.0"));
        }
        let template_name = |name: &str, default: String| -> Result<String> {
            let t = optional(get, name).unwrap_or(default);
            if t.len() > 512
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(bad(name, "lowercase letters, digits and _ only"));
            }
            Ok(t)
        };
        let template = template_name("WHATSAPP_TEMPLATE_NAME", d.whatsapp_template_name)?;
        let invite_template = template_name("WHATSAPP_INVITE_TEMPLATE_NAME", d.whatsapp_invite_template_name)?;
        let languages = match optional(get, "WHATSAPP_TEMPLATE_LANGUAGE") {
            None => d.whatsapp_template_languages,
            Some(s) => {
                let v: Vec<String> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                if v.is_empty() || !v.iter().all(|l| is_whatsapp_language(l)) {
                    return Err(bad("WHATSAPP_TEMPLATE_LANGUAGE", "language codes such as en_US,fr,sw"));
                }
                v
            }
        };
        let webotp_domain = optional(get, "WEBOTP_DOMAIN").map(|s| s.to_ascii_lowercase());
        if webotp_domain.as_deref().is_some_and(|s| !is_domain(s)) {
            return Err(bad(
                "WEBOTP_DOMAIN",
                &format!("must be a host name (no scheme, no @) of at most {MAX_WEBOTP_DOMAIN_LEN} characters"),
            ));
        }
        Ok(Self {
            senders,
            sns_sender_id: checked(
                get,
                "SNS_SENDER_ID",
                |s| {
                    s.len() <= 11
                        && s.bytes().all(|b| b.is_ascii_alphanumeric())
                        && s.bytes().any(|b| b.is_ascii_alphabetic())
                },
                "1–11 letters and digits, at least one letter",
            )?,
            sns_origination_number: checked(
                get,
                "SNS_ORIGINATION_NUMBER",
                |s| is_e164(s) || ((3..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())),
                "an E.164 number (+…) or a short code",
            )?,
            ses_from_address: checked(
                get,
                "SES_FROM_ADDRESS",
                is_email_sender,
                "an email address, or Name <address>",
            )?,
            whatsapp_base_url: base,
            whatsapp_api_version: version,
            whatsapp_phone_number_id: checked(
                get,
                "WHATSAPP_PHONE_NUMBER_ID",
                |s| s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit()),
                "digits only",
            )?,
            whatsapp_template_name: template,
            whatsapp_template_languages: languages,
            whatsapp_invite_template_name: invite_template,
            webotp_domain,
            android_app_hash: checked(
                get,
                "ANDROID_APP_HASH",
                |s| s.len() == APP_HASH_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
                "11 characters of base64",
            )?,
        })
    }

    /// The settings real senders need, for a deployment offering `channels`
    /// (email is always possible for users with a verified email): an error
    /// naming the first one missing.
    pub fn check_real(&self, channels: &[Pipe]) -> Result<()> {
        if self.webotp_domain.is_none() {
            return Err(bad("WEBOTP_DOMAIN", "is required to send real SMS"));
        }
        if self.ses_from_address.is_none() {
            return Err(bad("SES_FROM_ADDRESS", "is required to send real email"));
        }
        if channels.contains(&Pipe::Whatsapp) && self.whatsapp_phone_number_id.is_none() {
            return Err(bad(
                "WHATSAPP_PHONE_NUMBER_ID",
                "is required to send real WhatsApp messages (or leave WHATSAPP out of CHANNELS)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod delivery_tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Delivery> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Delivery::from_lookup(&|k: &str| map.get(k).cloned())
    }

    fn message(r: Result<Delivery>) -> String {
        r.err().map(|e| format!("{e:?}")).unwrap_or_default()
    }

    #[test]
    fn delivery_defaults() {
        let d = from(&[]).unwrap_or_default();
        assert_eq!(d.senders, SenderMode::Real);
        assert_eq!(d.whatsapp_base_url, "https://graph.facebook.com");
        assert_eq!(d.whatsapp_api_version, "v23.0");
        assert_eq!(d.whatsapp_template_languages, ["en_US"]);
        assert!(d.webotp_domain.is_none() && d.ses_from_address.is_none());
    }

    #[test]
    fn delivery_values_parse() {
        let d = from(&[
            ("SENDERS", "Console"),
            ("SNS_SENDER_ID", "Nambari"),
            ("SNS_ORIGINATION_NUMBER", "+12065550100"),
            ("SES_FROM_ADDRESS", "Nambari <no-reply@example.com>"),
            ("WHATSAPP_BASE_URL", "http://127.0.0.1:9000/"),
            ("WHATSAPP_PHONE_NUMBER_ID", "106540352242922"),
            ("WHATSAPP_TEMPLATE_LANGUAGE", "en_US, fr,sw"),
            ("WEBOTP_DOMAIN", "Auth.Example.com"),
            ("ANDROID_APP_HASH", "FA+9qCX9VSu"),
        ])
        .unwrap_or_default();
        assert_eq!(d.senders, SenderMode::Console);
        assert_eq!(d.whatsapp_base_url, "http://127.0.0.1:9000");
        assert_eq!(d.whatsapp_template_languages, ["en_US", "fr", "sw"]);
        assert_eq!(d.webotp_domain.as_deref(), Some("auth.example.com"));
        assert_eq!(d.android_app_hash.as_deref(), Some("FA+9qCX9VSu"));
    }

    #[test]
    fn bad_delivery_values_name_their_setting() {
        let too_long = format!("{}.com", "a".repeat(MAX_WEBOTP_DOMAIN_LEN));
        for (k, v) in [
            ("SENDERS", "pigeon"),
            ("SNS_SENDER_ID", "TwelveChars1"),
            ("SNS_SENDER_ID", "12345"),
            ("SNS_ORIGINATION_NUMBER", "0712345678"),
            ("SES_FROM_ADDRESS", "nobody"),
            ("SES_FROM_ADDRESS", "a@example.com\r\nBcc: x@y.z"),
            ("WHATSAPP_BASE_URL", "graph.facebook.com"),
            ("WHATSAPP_API_VERSION", "23"),
            ("WHATSAPP_PHONE_NUMBER_ID", "abc"),
            ("WHATSAPP_TEMPLATE_NAME", "Has Spaces"),
            ("WHATSAPP_TEMPLATE_LANGUAGE", "english"),
            ("WEBOTP_DOMAIN", "https://example.com"),
            ("WEBOTP_DOMAIN", "@example.com"),
            ("WEBOTP_DOMAIN", too_long.as_str()),
            ("ANDROID_APP_HASH", "short"),
        ] {
            let e = message(from(&[(k, v)]));
            assert!(e.contains(k), "{k}={v}: {e}");
        }
    }

    #[test]
    fn real_senders_name_the_setting_they_miss() {
        let d = from(&[]).unwrap_or_default();
        let e = d
            .check_real(&[Pipe::Sms])
            .err()
            .map(|e| format!("{e:?}"))
            .unwrap_or_default();
        assert!(e.contains("WEBOTP_DOMAIN"), "{e}");
        let d = from(&[("WEBOTP_DOMAIN", "example.com"), ("SES_FROM_ADDRESS", "a@example.com")]).unwrap_or_default();
        assert!(d.check_real(&[Pipe::Sms]).is_ok());
        let e = d
            .check_real(&[Pipe::Sms, Pipe::Whatsapp])
            .err()
            .map(|e| format!("{e:?}"))
            .unwrap_or_default();
        assert!(e.contains("WHATSAPP_PHONE_NUMBER_ID"), "{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = from(&[]).unwrap_or_default();
        assert_eq!(
            (s.otp_ttl, s.otp_max_attempts, s.resend_cooldown, s.max_resends),
            (120, 3, 60, 5)
        );
        assert_eq!(s.refresh_grace, 0);
        assert_eq!(s.table_name, "nambari-dev");
    }

    #[test]
    fn sandbox_is_refused_in_production() {
        let e = from(&[("STAGE", "prod"), ("SANDBOX", "true")])
            .err()
            .map(|e| format!("{e:?}"));
        assert!(e.is_some_and(|m| m.contains("SANDBOX")));
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (k, v) in [
            ("OTP_TTL_SECONDS", "abc"),
            ("REFRESH_REUSE_GRACE_SECONDS", "61"),
            ("TEST_PHONE_NUMBERS", "+1555:12"),
            ("CHANNELS", "PIGEON"),
        ] {
            let e = from(&[(k, v)]).err().map(|e| format!("{e:?}")).unwrap_or_default();
            assert!(e.contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn test_numbers_parse() {
        let s = from(&[("TEST_PHONE_NUMBERS", "+15555550100:123456, +15555550101:654321")]).unwrap_or_default();
        assert_eq!(s.test_numbers.get("+15555550101").map(String::as_str), Some("654321"));
    }
}
