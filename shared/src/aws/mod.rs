//! The one place an AWS `SdkConfig` is built, and the one place SDK errors are classified.
//!
//! Region, credentials and endpoints come from the standard environment and profile chain, so
//! an emulator is reached through `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_SNS`, …) and no code
//! path knows whether it talks to AWS or to an emulator.

mod environment;
mod error;
mod http1;
mod https;
mod pem;
mod queue_arn;

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_types::timeout::TimeoutConfig;

pub use error::{AwsError, AwsResultExt, error_chain};
pub(crate) use error::{is_transient, is_transient_code};
pub use https::{BUNDLES, TrustRoots};
pub use queue_arn::QueueArn;

/// How long one attempt of an AWS request may take before the SDK gives up on it (and retries,
/// if attempts are left). DynamoDB, SNS and SQS answer in milliseconds; a connection that hangs
/// must not eat a whole invocation.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an AWS request may take in all, the SDK's retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);
/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The timeouts every client built from [`sdk_config`] has.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Loads the shared SDK configuration from the environment, with [`timeouts`] and one HTTPS
/// client trusting the platform's CA bundle ([`TrustRoots::platform`]). Credentials and region
/// set in the environment, as Lambda sets them, are read from it without building the SDK's
/// default chains (the answer is the same; see `environment`).
///
/// Call it once per process (per Lambda cold start) and build every client from the result.
pub async fn sdk_config() -> SdkConfig {
    let var = |name: &str| std::env::var(name).ok();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(TrustRoots::platform().http_client())
        .timeout_config(timeouts());
    if let Some(credentials) = environment::credentials(var) {
        loader = loader.credentials_provider(credentials);
    }
    if let Some(region) = environment::region(var) {
        loader = loader.region(region);
    }
    loader.load().await
}
