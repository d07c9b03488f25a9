//! Lambda entry point: wiring only (see `lib.rs` for the handler).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    nambari_http::run(auth_token_refresh::NEEDS, auth_token_refresh::handle).await
}
