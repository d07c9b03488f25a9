//! The HTTP edge shared by every function: the response envelope
//! (docs/API.md §1), request parsing that never trusts the body, error →
//! status and response mapping, tracing set-up, configuration from the
//! environment, and the `run` that every function's `main.rs` calls.

pub mod body;
pub mod config;
pub mod envelope;
pub mod idempotent;
pub mod status;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::future::Future;
use std::sync::Arc;

use lambda_http::{Request, service_fn};
use nambari_core::App;
use nambari_core::app::Needs;

pub use body::{Body, bearer, client_ip, cookie, device_token, locale, path_param, query_param};
pub use envelope::{
    BodyTokens, DEVICE_COOKIE, REFRESH_COOKIE, Response, error_response, json_response, ok, respond,
    set_refresh_cookie, set_session_cookies, sign_in_response, signed_in_data,
};
pub use idempotent::idempotent;
pub use status::status_of;

/// JSON log lines (CloudWatch-friendly) on stdout, level from `RUST_LOG`
/// (default `info`). Safe to call twice.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// The whole of a function's `main`: tracing, configuration and the
/// clients its `needs` name, built once at cold start (a bad setting or a
/// missing secret fails here with a message naming it), then the Lambda
/// loop.
pub async fn run<F, Fut>(needs: Needs, handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<App>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send,
{
    init_tracing();
    let (app, refresher) = match config::start_from_env(needs).await {
        Ok(started) => (Arc::new(started.app), started.refresher.map(Arc::new)),
        Err(e) => {
            tracing::error!(error = %e, "cold start failed");
            return Err(e.into());
        }
    };
    let handler = Arc::new(handler);
    lambda_http::run(service_fn(move |req: Request| {
        let app = app.clone();
        let handler = handler.clone();
        let refresher = refresher.clone();
        async move {
            // Secrets are re-read at most every 5 minutes, never per request.
            if let Some(r) = &refresher {
                r.refresh_if_due().await;
            }
            Ok::<_, std::convert::Infallible>(handler(app, req).await)
        }
    }))
    .await
}
