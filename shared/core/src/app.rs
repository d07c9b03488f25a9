//! The dependencies every service uses, built once per process (a Lambda
//! cold start or local mode) and shared by reference.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use crate::limits::BreakerCache;
use crate::metrics::{Metrics, StdoutMetrics};
use crate::otp::Pepper;
use crate::repo::Db;
use crate::sender::Sender;
use crate::table::Table;
use crate::tokens::KeyRing;

pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    pub pepper: Pepper,
    pub sender: Arc<dyn Sender>,
    /// Where metric lines go (stdout as CloudWatch EMF by default).
    pub metrics: Arc<dyn Metrics>,
    /// Circuit-breaker thresholds per calling code, cached for 5 minutes.
    pub breaker: BreakerCache,
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
            keys,
            pepper,
            sender,
            metrics: Arc::new(StdoutMetrics),
            breaker: BreakerCache::default(),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_secs()
    }
}
