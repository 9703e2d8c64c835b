//! The outbox relay's Lambda: the orders table's stream in, SNS out.

use orderflow::env::FromVars;
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use outbox_relay::{Config, relay};

// One thread: an invocation is one batch at a time, its records run concurrently as futures
// (I/O-bound); no worker threads to start at a cold start, and a smaller binary.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    orderflow::telemetry::init("info");
    let config = Config::from_env()?;
    let sdk = orderflow::aws::sdk_config().await;
    let relay = Arc::new(relay(&sdk, config));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<StreamEvent>| {
        let relay = relay.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(
                relay
                    .handle(&event.payload, &event.context.request_id)
                    .await,
            )
        }
    }))
    .await
}
