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
