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
