//! The AWS SDK configuration every client here is built from, and the way
//! SDK errors are described without leaking what was sent.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::config::timeout::TimeoutConfig;

/// The configuration of the default chain
/// (`aws_config::defaults(BehaviorVersion::latest())`).
///
/// With `endpoint` (moto, DynamoDB Local, LocalStack) requests go to that
/// URL instead, and on a machine without AWS settings the client falls back
/// to region `us-east-1` (when neither `AWS_REGION` nor `AWS_DEFAULT_REGION`
/// is set) and dummy static credentials `test`/`test` (when neither
/// `AWS_ACCESS_KEY_ID` nor `AWS_PROFILE` is set), so local mode never waits
/// on the instance-metadata service.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
        if env_unset(&["AWS_REGION", "AWS_DEFAULT_REGION"]) {
            loader = loader.region(Region::new("us-east-1"));
        }
        if env_unset(&["AWS_ACCESS_KEY_ID", "AWS_PROFILE"]) {
            loader = loader.credentials_provider(Credentials::new("test", "test", None, None, "nambari-local"));
        }
    }
    loader.load().await
}

/// Timeouts of the clients that deliver codes (SNS, SES): a code that has
/// not gone out in a few seconds is better reported as failed, so that the
/// user can pick another channel, than left to the Lambda timeout.
pub fn send_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(6))
        .build()
}

fn env_unset(names: &[&str]) -> bool {
    names.iter().all(|n| std::env::var_os(n).is_none_or(|v| v.is_empty()))
}

/// What went wrong with an SDK call, for a log line or a `SendError`: the
/// service's error code (`InvalidParameter`, `AccessDeniedException`, …) or
/// the kind of failure. Never the service's message, which may quote the
/// destination or the request.
pub fn sdk_reason<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(ctx) => ctx.err().code().unwrap_or("unknown service error").to_owned(),
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "unreachable".to_owned(),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request could not be built".to_owned(),
        _ => "unknown error".to_owned(),
    }
}
