//! One record's path: unwrap (SNS or raw) → decode → route → layers (idempotency) → handler →
//! follow-up events → outcome policy ([`super::settle`]).

use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::SqsMessage;
use futures::FutureExt;
use std::time::Duration;

use tracing::info;

use super::idempotent::{IdempotencyLayer, Layered, WRITES_WITHOUT_TRANSACTION};
use super::settle::Processed;
use super::{
    Consumer, Invocation, Outcome, RecordError, RecordMeta, RecordOutcome, RecordStats, Route,
};
use crate::event::Event;
use crate::sns::{Unwrapped, unwrap};

/// The span every line about `record` is logged in: its identity, and once decoded its
/// event's (recorded by [`Consumer::run`]). No payload: bodies carry emails and addresses.
pub(super) fn span_for(record: &SqsMessage) -> tracing::Span {
    let attribute = |name: &str| record.attributes.get(name).map(String::as_str);
    tracing::info_span!(
        "record",
        message_id = record.message_id.as_deref().unwrap_or_default(),
        receive_count = attribute("ApproximateReceiveCount")
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(1),
        trace_header = attribute("AWSTraceHeader"),
        event_id = tracing::field::Empty,
        event_type = tracing::field::Empty,
        aggregate_id = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
        causation_id = tracing::field::Empty,
    )
}

/// The one line per record saying how it ended, whatever the path (run, not attempted, past
/// the deadline): what the Logs Insights queries in `infra/template.yaml` count and time.
pub(super) fn log_done(span: &tracing::Span, outcome: &RecordOutcome, duration: Duration) {
    span.in_scope(|| {
        info!(
            outcome = outcome.label(),
            kind = outcome.error_kind(),
            duration_ms = crate::telemetry::metrics::millis(duration),
            "record done"
        );
    });
}

/// The text of a panic's payload.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

impl<S: Send + Sync + 'static> Consumer<S> {
    /// Runs one record and settles its result.
    pub(super) async fn process_record(
        &self,
        record: &SqsMessage,
        invocation: &Invocation,
        stats: &mut RecordStats,
    ) -> RecordOutcome {
        let unwrapped = record.body.as_deref().map(unwrap);
        let sns_message_id = match &unwrapped {
            Some(Unwrapped::Notification(n)) => Some(n.message_id.clone().into_owned()),
            _ => None,
        };
        let meta = RecordMeta::of(record, sns_message_id);
        let message = match &unwrapped {
            None => Err(RecordError::EmptyBody),
            Some(Unwrapped::Control(control)) => Err(RecordError::SnsControlMessage {
                message_type: control.kind.clone(),
                topic_arn: control.topic_arn.clone(),
            }),
            Some(Unwrapped::Notification(notification)) => Ok(&*notification.message),
            Some(Unwrapped::Raw(raw)) => Ok(*raw),
        };
        let result = match message {
            Err(err) => Err(err),
            // A panic anywhere on the record's path (decoding, routing, idempotency, the
            // handler, publishing) fails this record alone.
            Ok(message) => AssertUnwindSafe(self.run(message, &meta, invocation, stats))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(RecordError::Panic(panic_message(&*panic)))),
        };
        self.settle(record, &meta, result).await
    }

    /// Decode → route → layers → handler → follow-ups.
    async fn run(
        &self,
        message: &str,
        meta: &RecordMeta,
        invocation: &Invocation,
        stats: &mut RecordStats,
    ) -> Result<Processed, RecordError> {
        let event = Event::decode_str(message)?;
        stats.event_age = Some(
            (chrono::Utc::now() - event.occurred_at)
                .to_std()
                .unwrap_or_default(),
        );
        // In one call: the JSON log layer serialises a span's fields again on every record.
        tracing::record_all!(
            tracing::Span::current(),
            event_id = %event.event_id,
            event_type = event.event_type().as_str(),
            aggregate_id = event.aggregate_id.as_str(),
            correlation_id = event.correlation_id.as_str(),
            causation_id = event.causation_id.as_deref(),
        );
        let Some(route) = self.routes.get(&event.event_type()) else {
            if self.options.strict {
                return Err(RecordError::Unhandled(event.event_type()));
            }
            info!("no handler for this event type; acknowledged");
            return Ok(Processed::Ignored(event.event_type()));
        };
        // Debug, not info: the `record done` line says the rest, and each info line costs a
        // record about 5 µs of JSON formatting (make bench, "telemetry").
        tracing::debug!("handling");
        let Some(idempotency) = &self.idempotency else {
            // `Consumer::ready` refuses a transactional route without a store; a consumer
            // built without calling it still fails the record rather than lose the writes.
            if route.transactional {
                return Err(RecordError::Misconfigured(
                    "a transactional handler needs an idempotency store".into(),
                ));
            }
            let outcome = self.call(route, event, meta).await?;
            if !outcome.writes.is_empty() {
                return Err(RecordError::Misconfigured(
                    WRITES_WITHOUT_TRANSACTION.into(),
                ));
            }
            self.send(&outcome.events, stats).await?;
            return Ok(Processed::Handled);
        };
        let claim = idempotency.claim(&self.name, &event, invocation.deadline);
        let layer = IdempotencyLayer { idempotency };
        let layered = if route.transactional {
            // The handler may run again on fresh data: each run gets its own copy of the event.
            layer
                .run_transactional(claim, || self.call(route, event.clone(), meta))
                .await?
        } else {
            layer.run(claim, || self.call(route, event, meta)).await?
        };
        match layered {
            Layered::Handled(events) => {
                self.send(&events, stats).await?;
                Ok(Processed::Handled)
            }
            Layered::Duplicate(events, how) => {
                self.send(&events, stats).await?;
                stats.duplicate_by = Some(how);
                Ok(Processed::Duplicate)
            }
        }
    }

    /// Calls the handler; a panic becomes a retryable error of this record alone.
    async fn call(
        &self,
        route: &Route<S>,
        event: Event,
        meta: &RecordMeta,
    ) -> Result<Outcome, RecordError> {
        let future = route
            .handler
            .call(event, meta.clone(), self.name.clone(), self.state.clone());
        // Caught here too, not only around the whole record: a panicking handler's claim is
        // released, so its retry need not wait for the hold to lapse.
        match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(err)) => Err(RecordError::Handler {
                kind: err.kind(),
                message: crate::aws::error_chain(err.source_error()),
                retryable: err.is_retryable(),
                first_retry_after: err.first_retry_after(),
                waits_for_cause: err.waits_for_cause(),
            }),
            Err(panic) => Err(RecordError::Panic(panic_message(&*panic))),
        }
    }

    /// Sends follow-up events to the event sink (counted in `stats` once sent).
    async fn send(&self, events: &[Event], stats: &mut RecordStats) -> Result<(), RecordError> {
        if events.is_empty() {
            return Ok(());
        }
        let Some(sink) = &self.events else {
            return Err(RecordError::Misconfigured(
                "the handler emitted events but the consumer has no event sink".into(),
            ));
        };
        sink.send(events)
            .await
            .map_err(|err| RecordError::Publish {
                message: err.message,
                retryable: err.retryable,
            })?;
        stats.follow_ups += events.len();
        Ok(())
    }
}
