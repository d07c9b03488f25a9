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

/// One EMF line counting 1 of metric `name` (namespace `Nambari`) with the
/// given dimensions, e.g. `counter("CodesSent", &[("Channel", "SMS"), ("Country", "TZ")], now)`.
pub fn counter(name: &str, dims: &[(&str, &str)], now: i64) -> String {
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": now * 1000,
            "CloudWatchMetrics": [{
                "Namespace": "Nambari",
                "Dimensions": [dims.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": [{"Name": name, "Unit": "Count"}]
            }]
        },
    });
    for (k, v) in dims {
        line[*k] = serde_json::Value::from(*v);
    }
    line[name] = serde_json::Value::from(1);
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_line_is_embedded_metric_format_with_its_dimensions() {
        let v: serde_json::Value =
            serde_json::from_str(&counter("CodesSent", &[("Channel", "SMS"), ("Country", "TZ")], 7))
                .unwrap_or_default();
        assert_eq!(v["_aws"]["Timestamp"], 7000);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            serde_json::json!(["Channel", "Country"])
        );
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "CodesSent");
        assert_eq!(
            (v["Channel"].as_str(), v["Country"].as_str(), v["CodesSent"].as_i64()),
            (Some("SMS"), Some("TZ"), Some(1))
        );
    }
}
