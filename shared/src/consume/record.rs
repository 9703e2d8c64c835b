//! One record through the pipeline: unwrap, decode, route, idempotency, handler, publish.

use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, error, info, warn};

use super::{Consumer, Invocation, Outcome, RecordError, RecordMeta, RecordOutcome, Route};
use crate::event::Event;
use crate::idempotency::{Acquired, Claim, Committed, Idempotency};
use crate::sns::{SqsBody, message_body};

/// A handler registered with `on` returned writes: only `on_transactional` commits them.
const WRITES_WITHOUT_TRANSACTION: &str =
    "writes returned by a handler not registered with on_transactional";

/// What a record's success was.
enum Processed {
    Handled,
    Duplicate,
    Ignored(crate::event::EventType),
}

/// What the idempotency record stores: the handler's result and the events to (re)publish.
#[derive(Default, Deserialize, Serialize)]
struct StoredOutcome {
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    events: Vec<serde_json::Value>,
}

impl StoredOutcome {
    fn of(outcome: &Outcome) -> Result<String, RecordError> {
        let events = outcome
            .events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| {
                RecordError::Misconfigured(format!("follow-up event cannot be serialized: {err}"))
            })?;
        serde_json::to_string(&StoredOutcome {
            result: outcome.result.clone(),
            events,
        })
        .map_err(|err| RecordError::Misconfigured(format!("result cannot be serialized: {err}")))
    }

    fn events(stored: &str) -> Result<Vec<Event>, RecordError> {
        if stored.is_empty() {
            return Ok(Vec::new());
        }
        let stored: StoredOutcome = serde_json::from_str(stored).map_err(|err| {
            RecordError::Misconfigured(format!("stored outcome is unreadable: {err}"))
        })?;
        stored
            .events
            .into_iter()
            .map(|e| Event::from_value(e).map_err(RecordError::from))
            .collect()
    }
}

/// The text of a panic's payload.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

impl RecordMeta {
    fn of(record: &SqsMessage, sns_message_id: Option<String>) -> Self {
        let attribute = |name: &str| record.attributes.get(name);
        RecordMeta {
            message_id: record.message_id.clone().unwrap_or_default(),
            receive_count: attribute("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            sent_at: attribute("SentTimestamp")
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(DateTime::<Utc>::from_timestamp_millis),
            group_id: attribute("MessageGroupId").cloned(),
            queue_arn: record.event_source_arn.clone(),
            sns_message_id,
        }
    }
}

impl<S: Send + Sync + 'static> Consumer<S> {
    /// Runs one record and turns a failure into DLQ hand-off or a delayed retry.
    pub(super) async fn process_record(
        &self,
        record: &SqsMessage,
        invocation: &Invocation,
    ) -> RecordOutcome {
        let unwrapped = record.body.as_deref().map(message_body);
        let sns_message_id = match &unwrapped {
            Some(SqsBody::Notification(n)) => Some(n.message_id.clone()),
            _ => None,
        };
        let meta = RecordMeta::of(record, sns_message_id);
        let span = tracing::info_span!("record", message_id = %meta.message_id, receive_count = meta.receive_count);
        async {
            let result = match &unwrapped {
                None => Err(RecordError::EmptyBody),
                Some(SqsBody::Control(control)) => Err(RecordError::SnsControlMessage {
                    message_type: control.kind.clone(),
                    topic_arn: control.topic_arn.clone(),
                }),
                Some(body) => {
                    let message = body.message().unwrap_or_default();
                    // A panic anywhere on the record's path (decoding, routing, idempotency,
                    // the handler, publishing) fails this record alone.
                    AssertUnwindSafe(self.run(message, &meta, invocation))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|panic| Err(RecordError::Panic(panic_message(&*panic))))
                }
            };
            self.settle(record, &meta, result).await
        }
        .instrument(span)
        .await
    }

    /// What a record's result means for SQS: acknowledged, dead-lettered, or retried later.
    async fn settle(
        &self,
        record: &SqsMessage,
        meta: &RecordMeta,
        result: Result<Processed, RecordError>,
    ) -> RecordOutcome {
        match result {
            Ok(Processed::Handled) => RecordOutcome::Handled,
            Ok(Processed::Duplicate) => RecordOutcome::Duplicate,
            Ok(Processed::Ignored(event_type)) => RecordOutcome::Ignored(event_type),
            Err(err) if err.is_retryable() => {
                let delay = self.retry_delay(&err, meta.receive_count);
                warn!(error = %err, kind = err.kind(), retry_in_s = delay.as_secs(), "record failed; will retry");
                if let Some(sqs) = &self.sqs {
                    sqs.delay_retry(record, meta, delay).await;
                }
                RecordOutcome::Failed(err)
            }
            Err(err) => {
                let Some(sqs) = &self.sqs else {
                    error!(error = %err, kind = err.kind(), "permanent failure and no DLQ access; reporting it failed");
                    return RecordOutcome::Failed(err);
                };
                match sqs.dead_letter(record, meta, &self.name, &err).await {
                    Ok(()) => {
                        error!(error = %err, kind = err.kind(), "permanent failure; sent to the DLQ");
                        RecordOutcome::DeadLettered(err)
                    }
                    Err(dlq_error) => {
                        error!(error = %err, kind = err.kind(), %dlq_error, "permanent failure, and the DLQ send failed; reporting it failed");
                        RecordOutcome::Failed(err)
                    }
                }
            }
        }
    }

    /// How long a transiently failed record stays invisible: the backoff for its receive
    /// count, and for a duplicate in progress at least until the other invocation's hold lapses.
    fn retry_delay(&self, err: &RecordError, receive_count: u32) -> std::time::Duration {
        let backoff = self.options.visibility_backoff;
        let delay = backoff.delay(receive_count);
        match err {
            RecordError::InProgress {
                until_ms: Some(until),
                ..
            } => {
                let left_ms = until.saturating_sub(Utc::now().timestamp_millis()).max(0) as u64;
                let wait = std::time::Duration::from_secs(left_ms / 1000 + 1);
                delay.max(wait).min(backoff.max.max(delay))
            }
            _ => delay,
        }
    }

    async fn run(
        &self,
        message: &str,
        meta: &RecordMeta,
        invocation: &Invocation,
    ) -> Result<Processed, RecordError> {
        let event = Event::decode(message.as_bytes())?;
        tracing::Span::current().record("event_id", tracing::field::display(event.event_id));
        let Some(route) = self.routes.get(&event.event_type()) else {
            if self.options.strict {
                return Err(RecordError::Unhandled(event.event_type()));
            }
            info!(event_type = %event.event_type(), event_id = %event.event_id, "no handler for this event type; acknowledged");
            return Ok(Processed::Ignored(event.event_type()));
        };
        info!(event_type = %event.event_type(), event_id = %event.event_id, correlation_id = %event.correlation_id, "handling");
        let Some(idempotency) = &self.idempotency else {
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
            self.publish(&outcome.events).await?;
            return Ok(Processed::Handled);
        };
        let claim = idempotency.claim(&self.name, &event, invocation.deadline);
        if let Some(stored) = idempotency.cached(&claim) {
            return self.replay(&claim, &stored).await;
        }
        if route.transactional {
            self.run_transactional(idempotency, route, event, meta, claim)
                .await
        } else {
            self.run_acquired(idempotency, route, event, meta, claim)
                .await
        }
    }

    /// Acquire → run → complete.
    async fn run_acquired(
        &self,
        idempotency: &Idempotency,
        route: &Route<S>,
        event: Event,
        meta: &RecordMeta,
        claim: Claim,
    ) -> Result<Processed, RecordError> {
        match idempotency.store().acquire(&claim).await? {
            Acquired::Started => {}
            Acquired::Completed(stored) => {
                idempotency.remember(&claim, &stored);
                return self.replay(&claim, &stored).await;
            }
            Acquired::InProgress { until_ms } => {
                return Err(RecordError::InProgress {
                    key: claim.key,
                    until_ms: Some(until_ms),
                });
            }
        }
        let outcome = match self.call(route, event, meta).await {
            Ok(outcome) if outcome.writes.is_empty() => outcome,
            Ok(_) => {
                self.release(idempotency, &claim).await;
                return Err(RecordError::Misconfigured(
                    WRITES_WITHOUT_TRANSACTION.into(),
                ));
            }
            Err(err) => {
                self.release(idempotency, &claim).await;
                return Err(err);
            }
        };
        let stored = StoredOutcome::of(&outcome)?;
        idempotency.store().complete(&claim, &stored).await?;
        idempotency.remember(&claim, &stored);
        self.publish(&outcome.events).await?;
        Ok(Processed::Handled)
    }

    /// Run → commit the record and the handler's writes in one transaction.
    async fn run_transactional(
        &self,
        idempotency: &Idempotency,
        route: &Route<S>,
        event: Event,
        meta: &RecordMeta,
        claim: Claim,
    ) -> Result<Processed, RecordError> {
        let outcome = self.call(route, event, meta).await?;
        let stored = StoredOutcome::of(&outcome)?;
        match idempotency
            .store()
            .commit(&claim, &stored, outcome.writes.clone())
            .await?
        {
            Committed::Written => {
                idempotency.remember(&claim, &stored);
                self.publish(&outcome.events).await?;
                Ok(Processed::Handled)
            }
            Committed::AlreadyTaken(Acquired::Completed(previous)) => {
                idempotency.remember(&claim, &previous);
                self.replay(&claim, &previous).await
            }
            Committed::AlreadyTaken(Acquired::InProgress { until_ms }) => {
                Err(RecordError::InProgress {
                    key: claim.key,
                    until_ms: Some(until_ms),
                })
            }
            Committed::AlreadyTaken(Acquired::Started) => Err(RecordError::InProgress {
                key: claim.key,
                until_ms: None,
            }),
        }
    }

    /// A duplicate: publish the stored follow-ups again (their ids are the same, so downstream
    /// idempotency absorbs them) in case the first attempt failed between commit and publish.
    async fn replay(&self, claim: &Claim, stored: &str) -> Result<Processed, RecordError> {
        info!(key = %claim.key, "duplicate; using the stored outcome");
        self.publish(&StoredOutcome::events(stored)?).await?;
        Ok(Processed::Duplicate)
    }

    async fn release(&self, idempotency: &Idempotency, claim: &Claim) {
        if let Err(err) = idempotency.store().release(claim).await {
            warn!(key = %claim.key, error = %err, "could not release the idempotency record; it lapses at the deadline");
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
            }),
            Err(panic) => Err(RecordError::Panic(panic_message(&*panic))),
        }
    }

    async fn publish(&self, events: &[Event]) -> Result<(), RecordError> {
        if events.is_empty() {
            return Ok(());
        }
        let Some(publisher) = &self.publisher else {
            return Err(RecordError::Misconfigured(
                "the handler emitted events but the consumer has no publisher".into(),
            ));
        };
        let report = publisher.publish_batch(events).await;
        let failures: Vec<_> = report.failures().collect();
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(RecordError::Publish {
                message: format!(
                    "{} of {} failed; first: {first}",
                    failures.len(),
                    events.len()
                ),
                retryable: failures.iter().all(|f| f.is_retryable()),
            }),
        }
    }
}
