//! The payment service's Lambda: charges placed orders, refunds cancelled ones.

use orderflow::env::FromVars;
use payment::{Config, consumer};

// One thread: an invocation is one batch at a time, its records run concurrently as futures
// (I/O-bound); no worker threads to start at a cold start, and a smaller binary.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    orderflow::telemetry::init("info");
    let config = Config::from_env()?;
    let sdk = orderflow::aws::sdk_config().await;
    orderflow::lambda::run_sqs(consumer(&sdk, config)).await
}
