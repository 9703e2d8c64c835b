//! The order service's Lambda: the HTTP API and the saga consumer in one function.

use orderflow::env::FromVars;
use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use orders::{Config, consumer};

// One thread: an invocation is one batch at a time, its records run concurrently as futures
// (I/O-bound); no worker threads to start at a cold start, and a smaller binary.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    orderflow::telemetry::init("info");
    let config = Config::from_env()?;
    let sdk = orderflow::aws::sdk_config().await;
    // A wiring mistake stops the function here, as an init error, before it takes a request.
    let consumer = Arc::new(consumer(&sdk, config).ready()?);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<serde_json::value::RawValue>>| {
            let consumer = consumer.clone();
            async move { orders::handle(&consumer, event).await }
        },
    ))
    .await
}
