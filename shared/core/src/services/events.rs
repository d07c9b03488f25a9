//! Publishing an event without failing the request: a publish that fails
//! or times out is logged and counted (`EventPublishFailed`), and the
//! request goes on.

use std::time::Duration;

use tracing::warn;

use crate::App;
use crate::base::error::Result;
use crate::ports::events::Event;

/// How long a publish may hold up a request before it is given up.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_millis(800);

/// Publishes `event`. A failure or a timeout is logged and counted, never
/// returned: the only error is a function publishing events it did not
/// declare (an internal error, so that its tests catch it).
pub async fn emit(app: &App, event: Event) -> Result<()> {
    let Some(events) = app.events()? else {
        return Ok(());
    };
    let kind = event.kind.as_str();
    let result = tokio::time::timeout(PUBLISH_TIMEOUT, events.publish(&event)).await;
    let reason = match result {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(reason)) => reason,
        Err(_) => "timed out".to_owned(),
    };
    warn!(event = kind, reason = %reason, "event not published");
    app.metrics.emit(crate::ports::metrics::counter(
        "EventPublishFailed",
        &[("Event", kind)],
        app.now(),
    ));
    Ok(())
}
