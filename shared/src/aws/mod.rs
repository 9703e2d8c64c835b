//! The one place an AWS `SdkConfig` is built.
//!
//! Region, credentials and endpoints come from the standard environment and profile chain, so
//! an emulator is reached through `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_SNS`, …) and no code
//! path knows whether it talks to AWS or to an emulator.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the shared SDK configuration from the environment.
///
/// Call it once per process (per Lambda cold start) and build every client from the result.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// Whether an SDK call may succeed if made again: network failures, timeouts, unparseable
/// responses, 5xx, and any service error code in `retryable_codes` (throttling and the like).
pub(crate) fn is_retryable<E>(err: &SdkError<E, HttpResponse>, retryable_codes: &[&str]) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            ctx.raw().status().is_server_error()
                || ctx
                    .err()
                    .code()
                    .is_some_and(|code| retryable_codes.contains(&code))
        }
        _ => false,
    }
}

/// An error and its causes, one after the other: "dispatch failure: io error: … refused".
/// The SDK's own `Display` says only "dispatch failure" or "service error".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some layers repeat their cause's text in their own; say it once.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
