//! Runs a handler under the request's `Idempotency-Key`, if it has one.

use std::future::Future;

use lambda_http::Request;
use nambari_core::App;
use nambari_core::services::idempotency::{self, Claim};

use crate::envelope::{Response, json_response, respond};

pub const HEADER: &str = "idempotency-key";

/// Runs `work` once per `Idempotency-Key` within 10 minutes; a repeat gets
/// the first (successful) response, marked `Idempotent-Replayed: true`.
pub async fn idempotent<Fut>(app: &App, req: &Request, scope: &str, work: Fut) -> Response
where
    Fut: Future<Output = Response>,
{
    let Some(header) = req.headers().get(HEADER) else {
        return work.await;
    };
    let key = String::from_utf8_lossy(header.as_bytes()).into_owned();
    let body: &[u8] = req.body().as_ref();
    match idempotency::claim(app, scope, &key, body).await {
        Err(e) => respond(app, Err(e)),
        Ok(Claim::Replay { status, body }) => {
            let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
            let mut res = json_response(status, &value);
            res.headers_mut()
                .insert("idempotent-replayed", http::HeaderValue::from_static("true"));
            res
        }
        Ok(Claim::Fresh(k)) => {
            let res = work.await;
            if res.status().is_success() {
                let text = match res.body() {
                    lambda_http::Body::Text(t) => t.clone(),
                    lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                };
                idempotency::complete(app, &k, res.status().as_u16(), &text).await;
            } else {
                idempotency::release(app, &k).await;
            }
            res
        }
    }
}
