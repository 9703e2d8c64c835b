//! The notification service's Lambda.

use notification::{Config, consumer};
use orderflow::env::FromVars;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orderflow::telemetry::init("info");
    let config = Config::from_env()?;
    let sdk = orderflow::aws::sdk_config().await;
    orderflow::lambda::run_sqs(consumer(&sdk, config)).await
}
