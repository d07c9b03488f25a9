//! Lambda entry point: wiring only (see `lib.rs` for the handler).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    nambari_http::run(otp_sessions::NEEDS, otp_sessions::handle).await
}
