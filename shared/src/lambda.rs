//! Lambda runtime glue (feature `lambda`): runs a [`Consumer`] as the function's handler.
//!
//! A function's `main.rs` is then: init telemetry, read its environment once, build its
//! clients and state once, build the consumer, `orderflow::lambda::run_sqs(consumer).await`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Context, LambdaEvent, service_fn};

use crate::consume::{BatchError, Consumer, Invocation};

/// The invocation as the consumer sees it: request id and deadline.
pub fn invocation(context: &Context) -> Invocation {
    Invocation {
        request_id: context.request_id.clone(),
        deadline: Some(UNIX_EPOCH + Duration::from_millis(context.deadline)),
    }
}

/// Serves SQS batches from the Lambda Runtime API with `consumer` until the process ends.
pub async fn run_sqs<S: Send + Sync + 'static>(
    consumer: Consumer<S>,
) -> Result<(), lambda_runtime::Error> {
    let consumer = Arc::new(consumer);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let consumer = consumer.clone();
        async move { handle(&consumer, event).await }
    }))
    .await
}

/// One invocation: the partial batch response, or an error if every record failed.
pub async fn handle<S: Send + Sync + 'static>(
    consumer: &Consumer<S>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, BatchError> {
    consumer
        .handle(event.payload, invocation(&event.context))
        .await
}

impl From<BatchError> for lambda_runtime::Diagnostic {
    fn from(err: BatchError) -> Self {
        let error_type = match &err {
            BatchError::AllFailed { .. } => "orderflow.AllRecordsFailed",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}
