//! The payment service's Lambda: charges placed orders, refunds cancelled ones.

use orderflow::env::FromVars;
use payment::{Config, consumer};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orderflow::telemetry::init("info");
    let config = Config::from_env()?;
    let sdk = orderflow::aws::sdk_config().await;
    orderflow::lambda::run_sqs(consumer(&sdk, config)).await
}
