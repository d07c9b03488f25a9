//! Lambda entry point: wiring only (see `lib.rs` for the handler).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    nambari_http::run(auth_onboarding_primary::NEEDS, auth_onboarding_primary::handle).await
}
