//! Test helpers shared by the crates' tests (feature `test-util`): an App on
//! any table with a fixed clock, a recording sender and fresh keys.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use crate::App;
use crate::clock::FixedClock;
use crate::config::Settings;
use crate::memory::MemoryTable;
use crate::metrics::RecordingMetrics;
use crate::otp::Pepper;
use crate::sender::RecordingSender;
use crate::table::Table;
use crate::tokens::KeyRing;

/// 2026-04-03T10:30:45Z, the reference's `action_time`.
pub const T0: i64 = 1_775_212_245;

/// An App and the test doubles behind it.
pub struct TestApp {
    pub app: Arc<App>,
    pub clock: Arc<FixedClock>,
    pub sender: Arc<RecordingSender>,
    pub metrics: Arc<RecordingMetrics>,
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
        app: Arc::new(app),
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
    pub calls: std::sync::Mutex<Vec<(crate::oauth::Provider, String)>>,
}

#[async_trait::async_trait]
impl crate::oauth::IdTokenVerifier for FakeIdTokens {
    async fn verify(
        &self,
        provider: crate::oauth::Provider,
        id_token: &str,
        nonce: &str,
        _now: i64,
    ) -> Result<crate::oauth::IdTokenClaims, crate::oauth::IdTokenError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((provider, nonce.to_owned()));
        }
        match id_token.strip_prefix("good:") {
            Some(sub) if !sub.is_empty() => Ok(crate::oauth::IdTokenClaims {
                sub: sub.to_owned(),
                email: None,
            }),
            _ => Err(crate::oauth::IdTokenError::Invalid("not a good:<sub> token")),
        }
    }
}

/// A test App with Google and Apple on, checked by [`FakeIdTokens`].
pub fn app_with_fake_providers() -> (TestApp, Arc<FakeIdTokens>) {
    let mut s = settings();
    s.oauth.google_client_ids = vec!["google-client".into()];
    s.oauth.apple_client_ids = vec!["apple-client".into()];
    let mut t = app_with(Arc::new(MemoryTable::new()), s);
    let fake = Arc::new(FakeIdTokens::default());
    if let Some(app) = Arc::get_mut(&mut t.app) {
        app.oauth = Some(fake.clone());
    }
    (t, fake)
}

/// Links Google subject `sub` (the idToken `good:<sub>`) to the user of
/// `access_token`, with a nonce issued for it (the session must be fresh).
pub async fn link_google(app: &App, access_token: &str, sub: &str) -> crate::Result<crate::oauth::Linked> {
    let nonce = crate::oauth::nonce(app, Some(access_token)).await?.nonce;
    let id_token = format!("good:{sub}");
    let input = crate::oauth::LinkInput {
        provider: Some("GOOGLE"),
        id_token: Some(&id_token),
        nonce: Some(&nonce),
        pin: None,
    };
    crate::oauth::link(app, Some(access_token), input).await
}

/// Adds and verifies `email` on the account of `access_token` through the
/// domain flow (the code read from the recording sender).
pub async fn verify_email(t: &TestApp, access_token: &str, email: &str) -> crate::Result<()> {
    let sent = crate::account::email_start(&t.app, Some(access_token), Some(email), "en".into(), None).await?;
    let code = t
        .sender
        .last_code_to(email)
        .ok_or_else(|| crate::Error::Internal(format!("no code was sent to {email}")))?;
    crate::account::email_verify(&t.app, Some(access_token), Some(&sent.temp_token), Some(&code), None).await?;
    Ok(())
}
