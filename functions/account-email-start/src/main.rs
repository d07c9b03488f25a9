//! Lambda entry point: wiring only (see `lib.rs` for the handler).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    nambari_http::run(account_email_start::NEEDS, account_email_start::handle).await
}
