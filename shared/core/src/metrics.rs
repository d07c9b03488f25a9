//! The metrics port: CloudWatch embedded-metric-format lines. On Lambda a
//! JSON line on stdout becomes a metric without any API call.

use std::sync::Mutex;

pub trait Metrics: Send + Sync {
    fn emit(&self, line: String);
}

/// Prints each line on stdout, where CloudWatch Logs picks EMF up.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutMetrics;

impl Metrics for StdoutMetrics {
    fn emit(&self, line: String) {
        println!("{line}");
    }
}

/// Keeps the lines (tests).
#[derive(Debug, Default)]
pub struct RecordingMetrics(pub Mutex<Vec<String>>);

impl RecordingMetrics {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Metrics for RecordingMetrics {
    fn emit(&self, line: String) {
        if let Ok(mut v) = self.0.lock() {
            v.push(line);
        }
    }
}
