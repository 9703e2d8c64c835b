//! What a handler receives and returns, and how typed handlers are stored.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use crate::idempotency::Write;
use chrono::{DateTime, Utc};

use crate::error::Classify;
use crate::event::{Event, EventData, EventPayload};

/// The error type a handler's own errors are boxed into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error a handler returns: what went wrong, a short stable `kind` (the DLQ's `errorKind`),
/// and whether retrying the message later can help.
///
/// A handler's typed error converts with `?` when it implements [`Classify`]; a one-off reason
/// uses [`HandlerError::permanent`] or [`HandlerError::transient`].
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct HandlerError {
    kind: &'static str,
    retryable: bool,
    first_retry_after: Option<std::time::Duration>,
    waits_for_cause: bool,
    source: BoxError,
}

impl HandlerError {
    /// Retrying cannot help (bad data, a business rule): the message goes to the DLQ now.
    pub fn permanent(err: impl Into<BoxError>) -> Self {
        HandlerError {
            kind: "HandlerPermanent",
            retryable: false,
            first_retry_after: None,
            waits_for_cause: false,
            source: err.into(),
        }
    }

    /// Retrying may help (a dependency is down or throttling): the message comes back later.
    pub fn transient(err: impl Into<BoxError>) -> Self {
        HandlerError {
            kind: "HandlerTransient",
            retryable: true,
            first_retry_after: None,
            waits_for_cause: false,
            source: err.into(),
        }
    }

    /// Names the failure for the DLQ's `errorKind`, logs and metrics (`OrderNotYetKnown`).
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    /// Asks for the first retry after `delay` rather than the consumer's backoff (see
    /// [`Classify::first_retry_after`]).
    pub fn with_first_retry_after(mut self, delay: std::time::Duration) -> Self {
        self.first_retry_after = Some(delay);
        self
    }

    /// Says the message waits for another one to be processed first (see
    /// [`Classify::waits_for_cause`]); implies a transient failure.
    pub fn waiting_for_cause(mut self) -> Self {
        self.waits_for_cause = true;
        self.retryable = true;
        self
    }

    /// Whether the message waits for another one to be processed first.
    pub fn waits_for_cause(&self) -> bool {
        self.waits_for_cause
    }

    /// Whether the message should come back later (true) or go to the DLQ now (false).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// How soon the first retry may succeed, if sooner than the backoff.
    pub fn first_retry_after(&self) -> Option<std::time::Duration> {
        self.first_retry_after
    }

    /// The short, stable name of the failure.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The underlying error.
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.source.as_ref()
    }
}

/// Any classified error becomes a handler error that keeps its kind and retryability.
impl<E: Classify> From<E> for HandlerError {
    fn from(err: E) -> Self {
        HandlerError {
            kind: err.kind(),
            retryable: err.is_retryable(),
            first_retry_after: err.first_retry_after(),
            waits_for_cause: err.is_retryable() && err.waits_for_cause(),
            source: Box::new(err),
        }
    }
}

/// Where an SQS record came from and how often it was delivered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordMeta {
    /// SQS message id (what `batchItemFailures` names).
    pub message_id: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
    /// `SentTimestamp`: when the message entered the queue.
    pub sent_at: Option<DateTime<Utc>>,
    /// FIFO queues: `MessageGroupId`.
    pub group_id: Option<String>,
    /// The queue's ARN (the event source).
    pub queue_arn: Option<String>,
    /// The SNS message id, when SNS wrapped the message.
    pub sns_message_id: Option<String>,
    /// `AWSTraceHeader`: the X-Ray trace the message was sent in (SNS and SQS pass it on when
    /// the publisher's request carried one).
    pub trace_header: Option<String>,
    /// For a message the consumer sent back to its queue to wait for its cause: when the
    /// first copy entered the queue (the wait started).
    pub waiting_since: Option<DateTime<Utc>>,
    /// For such a message: how often earlier copies were received.
    pub earlier_receives: u32,
}

impl RecordMeta {
    /// Deliveries of this event so far, earlier copies included: what the backoff counts.
    pub fn receives(&self) -> u32 {
        self.earlier_receives.saturating_add(self.receive_count)
    }
}

/// One event as a handler sees it: the typed payload, its envelope, and its SQS record.
#[derive(Clone, Debug)]
pub struct Message<T> {
    /// The payload, typed.
    pub data: T,
    /// The whole event (envelope and payload).
    pub event: Event,
    /// The SQS record it arrived in.
    pub record: RecordMeta,
    consumer: Arc<str>,
}

impl<T> Message<T> {
    /// The flow's correlation id.
    pub fn correlation_id(&self) -> &str {
        &self.event.correlation_id
    }

    /// A follow-up event caused by this one: it carries the correlation id, names this event as
    /// its cause, and has a deterministic id, so a re-run publishes the same event again.
    pub fn follow_up(&self, payload: impl Into<EventPayload>) -> Event {
        self.follow_up_nth(payload, 0)
    }

    /// Like [`Message::follow_up`], for the `n`-th event of one type from the same message.
    pub fn follow_up_nth(&self, payload: impl Into<EventPayload>, n: usize) -> Event {
        Event::follow_up(&self.event, &self.consumer, payload, n)
    }
}

/// What a handler did: events to publish, writes to commit (transactional handlers),
/// and a result to store with the idempotency record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub(crate) events: Vec<Event>,
    pub(crate) writes: Vec<Write>,
    pub(crate) result: serde_json::Value,
}

impl Outcome {
    /// Nothing to publish or write.
    pub fn done() -> Self {
        Outcome::default()
    }

    /// Publishes `event` after the effect is recorded (and again if a duplicate replays it).
    pub fn publish(mut self, event: Event) -> Self {
        self.events.push(event);
        self
    }

    /// Adds a write, committed in one transaction with the idempotency record
    /// (transactional handlers only).
    pub fn write(mut self, write: impl Into<Write>) -> Self {
        self.writes.push(write.into());
        self
    }

    /// A result stored with the idempotency record.
    pub fn with_result(mut self, result: serde_json::Value) -> Self {
        self.result = result;
        self
    }

    /// The events to publish.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The writes to commit.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A handler with its payload type erased, so handlers of every type live in one map.
pub(crate) trait ErasedHandler<S>: Send + Sync {
    fn call(
        &self,
        event: Event,
        record: RecordMeta,
        consumer: Arc<str>,
        state: Arc<S>,
    ) -> BoxFuture<Result<Outcome, HandlerError>>;
}

pub(crate) struct TypedHandler<T, F> {
    f: F,
    _payload: PhantomData<fn() -> T>,
}

impl<T, F> TypedHandler<T, F> {
    pub(crate) fn new(f: F) -> Self {
        TypedHandler {
            f,
            _payload: PhantomData,
        }
    }
}

impl<S, T, F, Fut> ErasedHandler<S> for TypedHandler<T, F>
where
    S: Send + Sync + 'static,
    T: EventData,
    F: Fn(Message<T>, Arc<S>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Outcome, HandlerError>> + Send + 'static,
{
    fn call(
        &self,
        event: Event,
        record: RecordMeta,
        consumer: Arc<str>,
        state: Arc<S>,
    ) -> BoxFuture<Result<Outcome, HandlerError>> {
        match T::try_from(event.payload.clone()) {
            Ok(data) => Box::pin((self.f)(
                Message {
                    data,
                    event,
                    record,
                    consumer,
                },
                state,
            )),
            // Routing is by event type, so this is a bug in registration, not in the message.
            Err(other) => {
                let message = format!(
                    "handler for {} got a {} payload",
                    T::EVENT_TYPE,
                    other.event_type()
                );
                Box::pin(async move { Err(HandlerError::permanent(message)) })
            }
        }
    }
}
