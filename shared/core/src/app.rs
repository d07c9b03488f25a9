//! The dependencies every service uses, built once per process (a Lambda
//! cold start or local mode) and shared by reference.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use crate::events::{Events, NoEvents};
use crate::limits::BreakerCache;
use crate::metrics::{Metrics, StdoutMetrics};
use crate::oauth::IdTokenVerifier;
use crate::otp::Pepper;
use crate::repo::Db;
use crate::secrets::Live;
use crate::sender::Sender;
use crate::table::Table;
use crate::tokens::KeyRing;

pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// The signing keys; replaced when the secret is refreshed.
    pub keys: Arc<Live<KeyRing>>,
    /// The OTP pepper; replaced when the secret is refreshed.
    pub pepper: Arc<Live<Pepper>>,
    /// The API-key pepper, when configured (`API_KEY_PEPPER_SECRET_ARN`).
    pub api_key_pepper: Option<Arc<Live<Pepper>>>,
    pub sender: Arc<dyn Sender>,
    /// Where metric lines go (stdout as CloudWatch EMF by default).
    pub metrics: Arc<dyn Metrics>,
    /// Circuit-breaker thresholds per calling code, cached for 5 minutes.
    pub breaker: BreakerCache,
    /// Where events go (SNS `EVENTS_TOPIC_ARN`; nowhere by default).
    pub events: Arc<dyn Events>,
    /// Checks Google and Apple idTokens (none when no provider is configured).
    pub oauth: Option<Arc<dyn IdTokenVerifier>>,
}

impl App {
    pub fn new(
        settings: Settings,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        keys: Arc<KeyRing>,
        pepper: Pepper,
        sender: Arc<dyn Sender>,
    ) -> Self {
        Self {
            settings,
            db: Db::new(table),
            clock,
            keys: Arc::new(Live::from_arc(keys)),
            pepper: Arc::new(Live::new(pepper)),
            api_key_pepper: None,
            sender,
            metrics: Arc::new(StdoutMetrics),
            breaker: BreakerCache::default(),
            events: Arc::new(NoEvents),
            oauth: None,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_secs()
    }
}
