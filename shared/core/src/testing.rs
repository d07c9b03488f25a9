//! Test helpers shared by the crates' tests (feature `test-util`): an App on
//! any table with a fixed clock, a recording sender and fresh keys.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use crate::App;
use crate::base::config::Settings;
use crate::base::otp::Pepper;
use crate::base::tokens::KeyRing;
use crate::ports::clock::FixedClock;
use crate::ports::id_tokens::IdTokenVerifier;
use crate::ports::memory::MemoryTable;
use crate::ports::metrics::RecordingMetrics;
use crate::ports::sender::RecordingSender;
use crate::ports::table::Table;

/// 2026-04-03T10:30:45Z, the reference's `action_time`.
pub const T0: i64 = 1_775_212_245;

/// An App and the test doubles behind it.
pub struct TestApp {
    pub app: Arc<App>,
    pub clock: Arc<FixedClock>,
    pub sender: Arc<RecordingSender>,
    pub metrics: Arc<RecordingMetrics>,
}

impl TestApp {
    /// Replaces the App with `edit` applied to a copy (to add an adapter:
    /// events, an idToken verifier, the API-key pepper, …).
    pub fn edit(&mut self, edit: impl FnOnce(App) -> App) {
        self.app = Arc::new(edit((*self.app).clone()));
    }
}

/// Sandbox settings with test number `+15555550100:123456`.
pub fn settings() -> Settings {
    let mut s = Settings {
        sandbox: true,
        ..Settings::default()
    };
    s.test_numbers.insert("+15555550100".into(), "123456".into());
    s
}

/// An App on `table` with `settings`, a fixed clock at [`T0`] and a recording sender.
pub fn app_with(table: Arc<dyn Table>, settings: Settings) -> TestApp {
    app_built(table, settings, |app| app)
}

/// [`app_with`], with `build` applied to the App (to add an adapter).
pub fn app_built(table: Arc<dyn Table>, settings: Settings, build: impl FnOnce(App) -> App) -> TestApp {
    let clock = Arc::new(FixedClock::at_secs(T0));
    let sender = Arc::new(RecordingSender::default());
    let set = KeyRing::generate_set().expect("key generation");
    let keys = KeyRing::from_set(&set, &settings.issuer, &settings.audience).expect("key ring");
    let metrics = Arc::new(RecordingMetrics::default());
    let mut app = App::new(
        settings,
        table,
        clock.clone(),
        Arc::new(keys),
        Pepper::new(vec![42; 32]).expect("pepper"),
        sender.clone(),
    );
    app.metrics = metrics.clone();
    TestApp {
        app: Arc::new(build(app)),
        clock,
        sender,
        metrics,
    }
}

/// An App on a fresh in-memory table with the default test settings.
pub fn app() -> TestApp {
    app_with(Arc::new(MemoryTable::new()), settings())
}

/// An idToken check for tests: takes `good:<sub>` as the provider's subject
/// `<sub>` and refuses anything else (the JWKS verifier is tested in
/// `nambari-oauth`); records the provider and nonce of every call.
#[derive(Default)]
pub struct FakeIdTokens {
    pub calls: std::sync::Mutex<Vec<(crate::base::values::Provider, String)>>,
}

#[async_trait::async_trait]
impl crate::ports::id_tokens::IdTokenVerifier for FakeIdTokens {
    async fn verify(
        &self,
        provider: crate::base::values::Provider,
        id_token: &str,
        nonce: &str,
        _now: i64,
    ) -> Result<crate::ports::id_tokens::IdTokenClaims, crate::ports::id_tokens::IdTokenError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((provider, nonce.to_owned()));
        }
        match id_token.strip_prefix("good:") {
            Some(sub) if !sub.is_empty() => Ok(crate::ports::id_tokens::IdTokenClaims {
                sub: sub.to_owned(),
                email: None,
            }),
            _ => Err(crate::ports::id_tokens::IdTokenError::Invalid("not a good:<sub> token")),
        }
    }
}

/// A test App with Google and Apple on, checked by [`FakeIdTokens`].
pub fn app_with_fake_providers() -> (TestApp, Arc<FakeIdTokens>) {
    let mut s = settings();
    s.oauth.google_client_ids = vec!["google-client".into()];
    s.oauth.apple_client_ids = vec!["apple-client".into()];
    let fake = Arc::new(FakeIdTokens::default());
    let verifier: Arc<dyn IdTokenVerifier> = fake.clone();
    let t = app_built(Arc::new(MemoryTable::new()), s, |app| app.with_oauth(Some(verifier)));
    (t, fake)
}

/// Links Google subject `sub` (the idToken `good:<sub>`) to the user of
/// `access_token`, with a nonce issued for it (the session must be fresh).
pub async fn link_google(app: &App, access_token: &str, sub: &str) -> crate::Result<crate::services::oauth::Linked> {
    use crate::flows::{account_oauth_link, account_oauth_nonce};
    let nonce = account_oauth_nonce::run(app, Some(access_token)).await?.nonce;
    let id_token = format!("good:{sub}");
    let raw = account_oauth_link::Raw {
        provider: Some("GOOGLE"),
        id_token: Some(&id_token),
        nonce: Some(&nonce),
        pin: None,
    };
    account_oauth_link::run(app, Some(access_token), account_oauth_link::Request::parse(raw)).await
}

/// Adds and verifies `email` on the account of `access_token` through the
/// domain flows (the code read from the recording sender).
pub async fn verify_email(t: &TestApp, access_token: &str, email: &str) -> crate::Result<()> {
    use crate::flows::{account_email_start, account_email_verify};
    let req = account_email_start::Request::parse(Some(email), "en".into(), None);
    let sent = account_email_start::run(&t.app, Some(access_token), req).await?;
    let code = t
        .sender
        .last_code_to(email)
        .ok_or_else(|| crate::Error::Internal(format!("no code was sent to {email}")))?;
    let req = account_email_verify::Request::parse(&t.app, Some(&sent.temp_token), Some(&code), None);
    account_email_verify::run(&t.app, Some(access_token), req).await?;
    Ok(())
}

/// A checkToken for `phone` on `device` (of the user `uid`, if any), as
/// `/auth/check` issues it, with the OAuth nonce `nonce-<device>`.
pub fn check_token(app: &App, phone: &str, device: &str, uid: Option<crate::base::ids::UserId>) -> String {
    let body = crate::model::claims::CheckBody {
        phone: phone.to_owned(),
        ctry: "TZ".into(),
        did: device.to_owned(),
        uid,
        non: Some(format!("nonce-{device}")),
    };
    app.keys()
        .and_then(|k| k.issue(crate::base::tokens::TokenKind::Check, phone, body, app.now()))
        .map(|(t, _)| t)
        .expect("issuing a checkToken")
}

/// Opens a sign-in code session for `phone` on `device` and returns its
/// tempToken and code (as passwordless-start would, without a checkToken).
pub async fn open_sign_in_code(app: &App, phone: &str, device: &str) -> (String, String) {
    use crate::services::otp_sessions::{NewOtp, Purpose, open_otp, sent};
    let opened = open_otp(
        app,
        NewOtp {
            purpose: Purpose::Auth,
            phone,
            country: "TZ",
            user_id: None,
            device_id: device,
            channel: crate::base::channel::Channel::Sms,
            destination: phone.to_owned(),
            locale: "en".into(),
            ip: None,
            max_attempts: None,
        },
        crate::ports::table::Tx::new(),
        Vec::new(),
    )
    .await
    .expect("opening a code session");
    let code = opened.code.expose().to_owned();
    let sent = sent(app, &opened, None, app.now()).expect("its tempToken");
    (sent.temp_token, code)
}

/// Registers `phone` on `device` with a code and returns the
/// onboardingToken of its primary onboarding.
pub async fn onboarding_token(app: &App, phone: &str, device: &str) -> String {
    use crate::flows::auth_verify_otp::{Raw, Request, Verified, run};
    let (temp, code) = open_sign_in_code(app, phone, device).await;
    let raw = Raw {
        temp_token: Some(&temp),
        otp: Some(&code),
        device_name: None,
        platform: None,
        ip: None,
    };
    match run(app, Request::parse(app, raw).expect("a valid request")).await {
        Ok(Verified::CollectPrimary { onboarding_token, .. }) => onboarding_token,
        other => panic!("expected COLLECT_PRIMARY, got {other:?}"),
    }
}

/// Signs `phone` up on `device` (a code, then primary onboarding as an
/// adult): the tokens of its first session.
pub async fn signed_up(app: &App, phone: &str, device: &str) -> crate::services::sessions::Tokens {
    use crate::flows::auth_onboarding_primary::{Onboarded, Raw, Request, run};
    let token = onboarding_token(app, phone, device).await;
    let raw = Raw {
        onboarding_token: Some(&token),
        first_name: Some("Asha"),
        last_name: Some("Mwangi"),
        birth_date: Some("1995-06-15"),
    };
    match run(app, Request::parse(app, raw).expect("a valid request")).await {
        Ok(Onboarded::Complete { tokens, .. }) => *tokens,
        other => panic!("expected a complete onboarding, got {other:?}"),
    }
}

/// Sets the first password of the user of `tokens` (its session proved a
/// code just now).
pub async fn set_password(app: &App, tokens: &crate::services::sessions::Tokens, password: &str) {
    use crate::flows::account_password::{Raw, Request, run};
    let raw = Raw {
        new_password: Some(password),
        confirm: Some(password),
        current: None,
    };
    run(app, Some(&tokens.access_token), Request::parse(raw))
        .await
        .expect("setting a first password");
}

/// Sets the first PIN of the user of `tokens` (its session proved a code
/// just now).
pub async fn set_pin(app: &App, tokens: &crate::services::sessions::Tokens, pin: &str) {
    use crate::flows::account_pin::{Request, run};
    run(app, Some(&tokens.access_token), Request::parse(Some(pin), None))
        .await
        .expect("setting a first PIN");
}

/// An integrator caller with every scope (no key stored: flows take the
/// caller as `apikeys::authenticate` returns it).
pub fn integrator() -> crate::services::apikeys::Integrator {
    crate::services::apikeys::Integrator {
        key_id: "key_test".into(),
        name: "test".into(),
        scopes: crate::services::apikeys::SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        test: false,
    }
}

/// The endpoints' flows as plain calls with the request fields as the
/// client sends them (each is `Request::parse` then `run`), for tests that
/// set state up through other endpoints than the one they test. Grouped
/// like the API: `calls::auth::start(…)` is `POST /auth/passwordless-start`.
pub mod calls {
    pub mod auth {
        use crate::App;
        use crate::base::error::Result;
        pub use crate::flows::auth_check::Checked;
        pub use crate::flows::auth_onboarding_primary::Onboarded;
        pub use crate::flows::auth_passwordless_channels::ChannelOption;
        pub use crate::flows::auth_verify_otp::Verified;
        use crate::flows::{
            auth_check, auth_onboarding_primary, auth_passwordless_channels, auth_passwordless_start, auth_resend_otp,
            auth_token_refresh, auth_token_revoke, auth_verify_otp,
        };
        pub use crate::model::claims::{
            AccessBody, CheckBody, DeviceVerificationBody, OnboardingBody, ResetBody, StepUpBody, TempBody, Tier,
        };
        pub use crate::services::otp_sessions::CodeSent as Sent;
        pub use crate::services::sessions::Tokens;

        fn ip(v: Option<&str>) -> Option<String> {
            v.map(str::to_owned)
        }

        pub async fn check(
            app: &App,
            identifier: Option<&str>,
            device: Option<&str>,
            from: Option<&str>,
        ) -> Result<Checked> {
            auth_check::run(app, auth_check::Request::parse(app, identifier, device, ip(from))?).await
        }

        pub async fn channels(app: &App, check: Option<&str>, device: Option<&str>) -> Result<Vec<ChannelOption>> {
            let req = auth_passwordless_channels::Request::parse(app, check, device)?;
            auth_passwordless_channels::run(app, req).await
        }

        pub struct StartInput<'a> {
            pub check_token: Option<&'a str>,
            pub channel: Option<&'a str>,
            pub device_id: Option<&'a str>,
            pub locale: String,
            pub ip: Option<&'a str>,
        }

        pub async fn start(app: &App, i: StartInput<'_>) -> Result<Sent> {
            let req = auth_passwordless_start::Request::parse(
                app,
                i.check_token,
                i.channel,
                i.device_id,
                i.locale,
                ip(i.ip),
            )?;
            auth_passwordless_start::run(app, req).await
        }

        pub struct VerifyInput<'a> {
            pub temp_token: Option<&'a str>,
            pub otp: Option<&'a str>,
            pub device_name: Option<&'a str>,
            pub platform: Option<&'a str>,
            pub ip: Option<&'a str>,
        }

        pub async fn verify(app: &App, i: VerifyInput<'_>) -> Result<Verified> {
            let raw = auth_verify_otp::Raw {
                temp_token: i.temp_token,
                otp: i.otp,
                device_name: i.device_name,
                platform: i.platform,
                ip: ip(i.ip),
            };
            auth_verify_otp::run(app, auth_verify_otp::Request::parse(app, raw)?).await
        }

        pub async fn resend(app: &App, temp: Option<&str>, from: Option<&str>) -> Result<Sent> {
            auth_resend_otp::run(app, auth_resend_otp::Request::parse(app, temp, ip(from))?).await
        }

        pub struct PrimaryInput<'a> {
            pub onboarding_token: Option<&'a str>,
            pub first_name: Option<&'a str>,
            pub last_name: Option<&'a str>,
            pub birth_date: Option<&'a str>,
        }

        pub async fn onboard_primary(app: &App, i: PrimaryInput<'_>) -> Result<Onboarded> {
            let raw = auth_onboarding_primary::Raw {
                onboarding_token: i.onboarding_token,
                first_name: i.first_name,
                last_name: i.last_name,
                birth_date: i.birth_date,
            };
            auth_onboarding_primary::run(app, auth_onboarding_primary::Request::parse(app, raw)?).await
        }

        /// A refreshed pair.
        #[derive(Debug)]
        pub struct Refreshed {
            pub tokens: Tokens,
        }

        pub async fn refresh(app: &App, token: Option<&str>) -> Result<Refreshed> {
            let tokens = auth_token_refresh::run(app, auth_token_refresh::Request::parse(token)?).await?;
            Ok(Refreshed { tokens })
        }

        pub async fn revoke(app: &App, token: Option<&str>) -> Result<()> {
            auth_token_revoke::run(app, auth_token_revoke::Request::parse(token)?).await
        }
    }

    pub mod account {
        use serde_json::Value;

        use crate::App;
        use crate::base::error::Result;
        pub use crate::flows::account_me::Profile;
        pub use crate::flows::account_sessions_list::DeviceSession as SessionView;
        use crate::flows::{
            account_bio, account_email_start, account_email_verify, account_interests, account_me, account_profile_pic,
            account_session_revoke, account_sessions_list, account_username, auth_logout,
        };
        pub use crate::services::otp_sessions::CodeSent as Sent;
        pub use crate::services::profile::{AuthMethods, Updated};

        pub async fn me(app: &App, token: Option<&str>) -> Result<Profile> {
            account_me::run(app, token).await
        }

        pub async fn set_username(app: &App, token: Option<&str>, name: Option<&str>) -> Result<Updated> {
            account_username::run(app, token, account_username::Request::parse(name)).await
        }

        pub async fn set_interests(app: &App, token: Option<&str>, list: Option<&Value>) -> Result<Updated> {
            account_interests::run(app, token, account_interests::Request::parse(list)).await
        }

        pub async fn set_bio(app: &App, token: Option<&str>, bio: Option<&str>) -> Result<Updated> {
            account_bio::run(app, token, account_bio::Request::parse(bio)).await
        }

        pub async fn set_profile_pic(app: &App, token: Option<&str>, url: Option<&str>) -> Result<Updated> {
            account_profile_pic::run(app, token, account_profile_pic::Request::parse(url)).await
        }

        pub async fn email_start(
            app: &App,
            token: Option<&str>,
            email: Option<&str>,
            locale: String,
            ip: Option<&str>,
        ) -> Result<Sent> {
            let req = account_email_start::Request::parse(email, locale, ip.map(str::to_owned));
            account_email_start::run(app, token, req).await
        }

        pub async fn email_verify(
            app: &App,
            token: Option<&str>,
            temp: Option<&str>,
            otp: Option<&str>,
            ip: Option<&str>,
        ) -> Result<Updated> {
            let req = account_email_verify::Request::parse(app, temp, otp, ip.map(str::to_owned));
            account_email_verify::run(app, token, req).await
        }

        pub async fn sessions(app: &App, token: Option<&str>) -> Result<Vec<SessionView>> {
            account_sessions_list::run(app, token).await
        }

        pub async fn revoke_session(app: &App, token: Option<&str>, id: Option<&str>) -> Result<()> {
            account_session_revoke::run(app, token, account_session_revoke::Request::parse(id)).await
        }

        pub async fn logout(app: &App, token: Option<&str>) -> Result<()> {
            auth_logout::run(app, token).await
        }
    }

    pub mod credentials {
        use crate::App;
        use crate::base::error::Result;
        pub use crate::flows::auth_step_up::SteppedUp;
        use crate::flows::{account_password, account_pin, auth_step_up};
        pub use crate::services::credentials::CredentialSet;

        pub async fn set_pin(
            app: &App,
            token: Option<&str>,
            pin: Option<&str>,
            current: Option<&str>,
        ) -> Result<CredentialSet> {
            account_pin::run(app, token, account_pin::Request::parse(pin, current)).await
        }

        pub async fn set_password(
            app: &App,
            token: Option<&str>,
            new_password: Option<&str>,
            confirm: Option<&str>,
            current: Option<&str>,
        ) -> Result<CredentialSet> {
            let raw = account_password::Raw {
                new_password,
                confirm,
                current,
            };
            account_password::run(app, token, account_password::Request::parse(raw)).await
        }

        pub async fn step_up(
            app: &App,
            token: Option<&str>,
            pin: Option<&str>,
            scope: Option<&str>,
        ) -> Result<SteppedUp> {
            auth_step_up::run(app, token, auth_step_up::Request::parse(pin, scope)).await
        }
    }

    pub mod password {
        use crate::App;
        use crate::base::error::Result;
        pub use crate::flows::auth_password_forgot_initiate::ResetStarted;
        use crate::flows::{
            account_device_verify, auth_login_password, auth_password_forgot_initiate, auth_password_forgot_reset,
            auth_password_forgot_verify_otp,
        };
        use crate::model::records::User;
        pub use crate::services::device_check::SignIn;
        use crate::services::sessions::Tokens;

        pub struct PasswordLoginInput<'a> {
            pub check_token: Option<&'a str>,
            pub password: Option<&'a str>,
            pub device_id: Option<&'a str>,
            pub device_token: Option<&'a str>,
            pub device_name: Option<&'a str>,
            pub platform: Option<&'a str>,
            pub locale: String,
            pub ip: Option<&'a str>,
        }

        pub async fn login(app: &App, i: PasswordLoginInput<'_>) -> Result<SignIn> {
            let raw = auth_login_password::Raw {
                check_token: i.check_token,
                password: i.password,
                device_id: i.device_id,
                device_token: i.device_token,
                device_name: i.device_name,
                platform: i.platform,
                locale: i.locale,
                ip: i.ip.map(str::to_owned),
            };
            auth_login_password::run(app, auth_login_password::Request::parse(app, raw)?).await
        }

        pub async fn verify_device(
            app: &App,
            token: Option<&str>,
            otp: Option<&str>,
            ip: Option<&str>,
        ) -> Result<(User, Tokens)> {
            let req = account_device_verify::Request::parse(app, token, otp, ip.map(str::to_owned))?;
            account_device_verify::run(app, req).await
        }

        pub async fn forgot_initiate(
            app: &App,
            check: Option<&str>,
            device: Option<&str>,
            locale: String,
            ip: Option<&str>,
        ) -> Result<ResetStarted> {
            let req = auth_password_forgot_initiate::Request::parse(app, check, device, locale, ip.map(str::to_owned))?;
            auth_password_forgot_initiate::run(app, req).await
        }

        pub async fn forgot_verify(
            app: &App,
            temp: Option<&str>,
            otp: Option<&str>,
            ip: Option<&str>,
        ) -> Result<String> {
            let req = auth_password_forgot_verify_otp::Request::parse(app, temp, otp, ip.map(str::to_owned))?;
            auth_password_forgot_verify_otp::run(app, req).await
        }

        pub struct ResetInput<'a> {
            pub reset_token: Option<&'a str>,
            pub new_password: Option<&'a str>,
            pub confirm: Option<&'a str>,
            pub device_name: Option<&'a str>,
            pub platform: Option<&'a str>,
        }

        pub async fn forgot_reset(app: &App, i: ResetInput<'_>) -> Result<(User, Tokens)> {
            let raw = auth_password_forgot_reset::Raw {
                reset_token: i.reset_token,
                new_password: i.new_password,
                confirm: i.confirm,
                device_name: i.device_name,
                platform: i.platform,
            };
            auth_password_forgot_reset::run(app, auth_password_forgot_reset::Request::parse(app, raw)?).await
        }
    }

    pub mod oauth {
        use crate::App;
        use crate::base::error::Result;
        pub use crate::flows::account_oauth_nonce::Nonce;
        use crate::flows::{account_oauth_link, account_oauth_nonce, account_oauth_unlink, auth_login_oauth};
        pub use crate::services::device_check::SignIn;
        pub use crate::services::oauth::Linked;

        pub async fn nonce(app: &App, token: Option<&str>) -> Result<Nonce> {
            account_oauth_nonce::run(app, token).await
        }

        pub struct LinkInput<'a> {
            pub provider: Option<&'a str>,
            pub id_token: Option<&'a str>,
            pub nonce: Option<&'a str>,
            pub pin: Option<&'a str>,
        }

        pub async fn link(app: &App, token: Option<&str>, i: LinkInput<'_>) -> Result<Linked> {
            let raw = account_oauth_link::Raw {
                provider: i.provider,
                id_token: i.id_token,
                nonce: i.nonce,
                pin: i.pin,
            };
            account_oauth_link::run(app, token, account_oauth_link::Request::parse(raw)).await
        }

        pub async fn unlink(app: &App, token: Option<&str>, provider: Option<&str>) -> Result<Linked> {
            account_oauth_unlink::run(app, token, account_oauth_unlink::Request::parse(provider)).await
        }

        pub struct OAuthLoginInput<'a> {
            pub check_token: Option<&'a str>,
            pub provider: Option<&'a str>,
            pub id_token: Option<&'a str>,
            pub device_id: Option<&'a str>,
            pub device_token: Option<&'a str>,
            pub device_name: Option<&'a str>,
            pub platform: Option<&'a str>,
            pub locale: String,
            pub ip: Option<&'a str>,
        }

        pub async fn login(app: &App, i: OAuthLoginInput<'_>) -> Result<SignIn> {
            let raw = auth_login_oauth::Raw {
                check_token: i.check_token,
                provider: i.provider,
                id_token: i.id_token,
                device_id: i.device_id,
                device_token: i.device_token,
                device_name: i.device_name,
                platform: i.platform,
                locale: i.locale,
                ip: i.ip.map(str::to_owned),
                state: None,
            };
            auth_login_oauth::run(app, auth_login_oauth::Request::parse(app, raw)?).await
        }
    }

    pub mod one_step {
        use crate::App;
        use crate::base::error::Result;
        pub use crate::flows::auth_otp_trigger::Triggered;
        pub use crate::flows::auth_otp_verify::OneStepTokens;
        use crate::flows::{auth_otp_trigger, auth_otp_verify};

        pub async fn trigger(
            app: &App,
            phone: Option<&str>,
            device: Option<&str>,
            locale: String,
            ip: Option<&str>,
        ) -> Result<Triggered> {
            let req = auth_otp_trigger::Request::parse(app, phone, device, locale, ip.map(str::to_owned))?;
            auth_otp_trigger::run(app, req).await
        }

        pub struct OneStepVerifyInput<'a> {
            pub phone: Option<&'a str>,
            pub otp: Option<&'a str>,
            pub device_id: Option<&'a str>,
            pub device_name: Option<&'a str>,
            pub platform: Option<&'a str>,
            pub ip: Option<&'a str>,
        }

        pub async fn verify(app: &App, i: OneStepVerifyInput<'_>) -> Result<OneStepTokens> {
            let raw = auth_otp_verify::Raw {
                phone: i.phone,
                otp: i.otp,
                device_id: i.device_id,
                device_name: i.device_name,
                platform: i.platform,
                ip: i.ip.map(str::to_owned),
            };
            auth_otp_verify::run(app, auth_otp_verify::Request::parse(app, raw)?).await
        }
    }

    pub mod integrator {
        use serde_json::{Map, Value};

        use crate::App;
        use crate::base::error::Result;
        pub use crate::flows::otp_sessions::{Listed, Request as ListFilter};
        pub use crate::flows::otp_verify::VerifyOutcome as Verified;
        pub use crate::flows::step_up_consume::Consumed;
        use crate::flows::{otp_resend, otp_send, otp_sessions, otp_verify, step_up_consume, users_find, users_get};
        pub use crate::model::integrator::{IChannel, Status};
        pub use crate::model::records::UserObject;
        pub use crate::services::apikeys::Integrator;
        pub use crate::services::integrator::SessionSent as Sent;

        pub fn parse_send(app: &App, body: &Map<String, Value>) -> Result<otp_send::Request> {
            otp_send::Request::parse(app, body)
        }

        pub async fn send(app: &App, caller: &Integrator, req: otp_send::Request, locale: &str) -> Result<Sent> {
            otp_send::run(app, caller, req, locale).await
        }

        pub async fn verify(
            app: &App,
            caller: &Integrator,
            token: Option<&str>,
            otps: Option<&Value>,
        ) -> Result<Verified> {
            otp_verify::run(app, caller, otp_verify::Request::parse(token, otps)?).await
        }

        pub async fn resend(
            app: &App,
            caller: &Integrator,
            token: Option<&str>,
            channels: Option<&Value>,
            locale: &str,
        ) -> Result<Sent> {
            otp_resend::run(app, caller, otp_resend::Request::parse(token, channels)?, locale).await
        }

        pub fn parse_filter<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<ListFilter> {
            otp_sessions::Request::parse(get)
        }

        pub async fn list(app: &App, caller: &Integrator, f: ListFilter) -> Result<Listed> {
            otp_sessions::run(app, caller, f).await
        }

        pub async fn user_by_id(app: &App, caller: &Integrator, id: Option<&str>) -> Result<UserObject> {
            users_get::run(app, caller, users_get::Request::parse(id)?).await
        }

        pub async fn user_by_phone(app: &App, caller: &Integrator, phone: Option<&str>) -> Result<UserObject> {
            users_find::run(app, caller, users_find::Request::parse(app, phone)?).await
        }

        pub async fn consume_step_up(app: &App, caller: &Integrator, token: Option<&str>) -> Result<Consumed> {
            step_up_consume::run(app, caller, step_up_consume::Request::parse(token)?).await
        }
    }

    pub mod invites {
        use serde_json::Value;

        use crate::App;
        use crate::base::error::Result;
        use crate::flows::invites_create;
        pub use crate::flows::invites_create::Invited;
        pub use crate::services::apikeys::Integrator;
        pub use crate::services::invites::pending;

        pub async fn create(
            app: &App,
            caller: &Integrator,
            phone: Option<&str>,
            metadata: Option<&Value>,
            sandbox: Option<&Value>,
            locale: &str,
        ) -> Result<Invited> {
            let req = invites_create::Request::parse(app, phone, metadata, sandbox, locale.to_owned())?;
            invites_create::run(app, caller, req).await
        }
    }

    pub mod pin_recovery {
        use crate::App;
        use crate::base::error::Result;
        pub use crate::flows::account_pin_recovery_start::Started;
        use crate::flows::{account_pin_recovery_start, account_pin_recovery_verify};
        use crate::model::records::User;
        use crate::services::sessions::Tokens;

        pub async fn start(app: &App, token: Option<&str>, locale: String, ip: Option<&str>) -> Result<Started> {
            let req = account_pin_recovery_start::Request {
                locale,
                ip: ip.map(str::to_owned),
            };
            account_pin_recovery_start::run(app, token, req).await
        }

        pub struct RecoverInput<'a> {
            pub recovery_token: Option<&'a str>,
            pub email_otp: Option<&'a str>,
            pub phone_otp: Option<&'a str>,
            pub pin: Option<&'a str>,
            pub ip: Option<&'a str>,
        }

        pub async fn verify(app: &App, token: Option<&str>, i: RecoverInput<'_>) -> Result<(User, Tokens)> {
            let raw = account_pin_recovery_verify::Raw {
                recovery_token: i.recovery_token,
                email_otp: i.email_otp,
                phone_otp: i.phone_otp,
                pin: i.pin,
                ip: i.ip.map(str::to_owned),
            };
            account_pin_recovery_verify::run(app, token, account_pin_recovery_verify::Request::parse(app, raw)).await
        }
    }
}
