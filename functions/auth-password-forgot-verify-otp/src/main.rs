//! Lambda entry point: wiring only (see `lib.rs` for the handler).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    nambari_http::run(
        auth_password_forgot_verify_otp::NEEDS,
        auth_password_forgot_verify_otp::handle,
    )
    .await
}
