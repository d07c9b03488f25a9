//! `GET /.well-known/jwks.json`: the public halves of the current and
//! previous signing keys, as a plain JWKS document (not the envelope: JWT
//! libraries read it directly).

use std::sync::Arc;

use http::header::{CACHE_CONTROL, HeaderValue};
use lambda_http::Request;
use nambari_core::App;
use nambari_core::app::Needs;
use nambari_core::flows::jwks as flow;
use nambari_http::{Response, json_response};

pub const METHOD: &str = "GET";
pub const PATH: &str = "/.well-known/jwks.json";

/// What this function uses: its deployment grants exactly this.
pub const NEEDS: Needs = flow::NEEDS;

pub async fn handle(app: Arc<App>, _req: Request) -> Response {
    let mut res = match flow::run(&app) {
        Ok(doc) => json_response(200, &doc),
        Err(e) => return nambari_http::respond(&app, Err(e)),
    };
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

#[cfg(test)]
mod tests;
