//! Lambda runtime glue (feature `lambda`): runs a [`Consumer`] as the function's handler.
//!
//! A function's `main.rs` is then: init telemetry, read its environment once, build its
//! clients and state once, build the consumer, `orderflow::lambda::run_sqs(consumer).await`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use tracing::Instrument;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Context, LambdaEvent, service_fn};

use crate::consume::{BatchError, Consumer, Invocation};

/// The invocation as the consumer sees it: request id, deadline and trace id (`cold_start` is
/// set by [`handle`], from [`first_invocation`]).
pub fn invocation(context: &Context) -> Invocation {
    Invocation {
        request_id: context.request_id.clone(),
        deadline: Some(UNIX_EPOCH + Duration::from_millis(context.deadline)),
        cold_start: false,
        trace_id: context.xray_trace_id.clone(),
    }
}

/// Serves SQS batches from the Lambda Runtime API with `consumer` until the process ends.
pub async fn run_sqs<S: Send + Sync + 'static>(
    consumer: Consumer<S>,
) -> Result<(), lambda_runtime::Error> {
    // A wiring mistake stops the function here, as an init error Lambda reports, before it
    // takes a record.
    let consumer = Arc::new(consumer.ready()?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let consumer = consumer.clone();
        async move { handle(&consumer, event).await }
    }))
    .await
}

/// Whether this process has served an invocation yet.
static SERVED: AtomicBool = AtomicBool::new(false);

/// Whether this is the execution environment's first invocation; marks it served. [`handle`]
/// calls it; a function that serves other events too (the orders API's HTTP requests) calls it
/// for those, so the first of any kind is the cold one.
pub fn first_invocation() -> bool {
    first_of(&SERVED)
}

/// Whether this is the first invocation `served` has seen (and marks it seen).
fn first_of(served: &AtomicBool) -> bool {
    !served.swap(true, Ordering::Relaxed)
}

/// One invocation: the partial batch response, or an error if every record failed.
///
/// Every line logged while it runs is in an `invocation` span naming the function and saying
/// whether this is the environment's first invocation (`cold_start`, from
/// [`first_invocation`]); the runtime's own span around it carries the request id and the X-Ray
/// trace id.
pub async fn handle<S: Send + Sync + 'static>(
    consumer: &Consumer<S>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, BatchError> {
    let cold_start = first_invocation();
    let span = tracing::info_span!(
        "invocation",
        function = %event.context.env_config.function_name,
        cold_start,
    );
    let invocation = Invocation {
        cold_start,
        ..invocation(&event.context)
    };
    consumer
        .handle(event.payload, invocation)
        .instrument(span)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consume::{HandlerError, Message, Outcome};
    use crate::event::{OrderPlaced, examples};
    use serde_json::json;

    async fn ok(_: Message<OrderPlaced>, _: Arc<()>) -> Result<Outcome, HandlerError> {
        Ok(Outcome::done())
    }

    fn context(deadline_ms: u64) -> Context {
        let mut context = Context::default();
        context.request_id = "req-1".into();
        context.deadline = deadline_ms;
        context
    }

    #[tokio::test]
    async fn every_line_of_an_invocation_names_the_function_and_only_the_first_is_cold() {
        let logs = crate::testing::LogCapture::new();
        // The other tests of this binary run the same code on other threads meanwhile.
        let _capture = logs.install();
        let consumer = Consumer::new("payment", ()).on(ok);
        let batch = || {
            let body = examples::order_placed().encode().unwrap();
            let payload: SqsEvent = serde_json::from_value(json!({"Records": [
                {"messageId": "m", "body": body, "attributes": {}, "messageAttributes": {}}
            ]}))
            .unwrap();
            let mut context = context(u64::MAX / 2);
            context.env_config = Arc::new(lambda_runtime::Config {
                function_name: "orderflow-payment".into(),
                ..Default::default()
            });
            LambdaEvent::new(payload, context)
        };

        handle(&consumer, batch()).await.unwrap();
        handle(&consumer, batch()).await.unwrap();

        let lines = logs.lines();
        // The invocation's fields are on every line, its records' lines too.
        assert!(
            lines
                .iter()
                .all(|l| l["function"] == "orderflow-payment" && l["cold_start"].is_boolean()),
            "{}",
            logs.text()
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l["message"] == "record done")
                .count(),
            2,
            "{}",
            logs.text()
        );
        let invocations: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["message"] == "batch processed")
            .collect();
        assert_eq!(invocations.len(), 2, "{}", logs.text());
        // The process may have served an invocation in another test first; never twice cold.
        assert_eq!(invocations[1]["cold_start"], false);
        assert!(invocations[0]["cold_start"].is_boolean());
    }

    #[test]
    fn only_the_first_invocation_is_cold() {
        let served = AtomicBool::new(false);
        assert!(first_of(&served));
        assert!(!first_of(&served));
        assert!(!first_of(&served));
    }

    #[test]
    fn the_deadline_comes_from_the_runtime_api_in_epoch_milliseconds() {
        let invocation = invocation(&context(1_763_900_000_123));
        assert_eq!(invocation.request_id, "req-1");
        assert_eq!(
            invocation.deadline,
            Some(UNIX_EPOCH + Duration::from_millis(1_763_900_000_123))
        );
    }

    #[tokio::test]
    async fn a_lambda_event_gets_the_partial_batch_response() {
        let body = examples::order_placed().encode().unwrap();
        let payload: SqsEvent = serde_json::from_value(json!({"Records": [
            {"messageId": "good", "body": body, "attributes": {}, "messageAttributes": {}},
            {"messageId": "bad", "body": "nope", "attributes": {}, "messageAttributes": {}}
        ]}))
        .unwrap();
        let deadline = std::time::SystemTime::now() + Duration::from_secs(30);
        let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let consumer = Consumer::new("payment", ()).on(ok);
        let response = handle(&consumer, LambdaEvent::new(payload, context(deadline_ms)))
            .await
            .unwrap();
        let failed: Vec<_> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(failed, ["bad"]);
        let diagnostic = lambda_runtime::Diagnostic::from(BatchError::AllFailed {
            count: 1,
            first: "x".into(),
        });
        assert_eq!(diagnostic.error_type, "orderflow.AllRecordsFailed");
    }
}
