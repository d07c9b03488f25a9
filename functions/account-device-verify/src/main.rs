//! Lambda entry point: wiring only (see `lib.rs` for the handler).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    nambari_http::run(account_device_verify::NEEDS, account_device_verify::handle).await
}
