//! A test fixture for the local Lambda service: an SQS consumer that, on a message's first
//! delivery, sleeps longer than any sensible timeout when the body says `sleep`, and exits the
//! process when it says `crash`. Only the runner's tests use it (`tests/fixtures/`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

async fn handle(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    for record in &event.payload.records {
        let first = record
            .attributes
            .get("ApproximateReceiveCount")
            .is_some_and(|n| n == "1");
        match record.body.as_deref() {
            Some("sleep") if first => tokio::time::sleep(std::time::Duration::from_secs(60)).await,
            Some("crash") if first => std::process::exit(3),
            _ => {}
        }
    }
    Ok(SqsBatchResponse::default())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
