//! Why a record or a batch failed.

use crate::event::{EventError, EventType};
use crate::idempotency::IdempotencyError;

/// Why one SQS record was not processed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The SQS record has no body.
    #[error("the SQS message has no body")]
    EmptyBody,
    /// The body is not a valid event.
    #[error(transparent)]
    Decode(#[from] EventError),
    /// No handler for this event type, and the consumer is strict.
    #[error("this consumer has no handler for {0}")]
    Unhandled(EventType),
    /// The handler said retrying cannot help.
    #[error("handler failed permanently: {0}")]
    Permanent(String),
    /// The handler said retrying may help.
    #[error("handler failed: {0}")]
    Transient(String),
    /// The handler panicked.
    #[error("handler panicked: {0}")]
    Panic(String),
    /// Another invocation is processing the same event right now.
    #[error("`{key}` is being processed by another invocation")]
    InProgress {
        /// The idempotency key.
        key: String,
        /// When the other invocation's hold lapses (epoch ms), if known: no point retrying
        /// sooner.
        until_ms: Option<i64>,
    },
    /// The idempotency store failed or refused.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// Follow-up events were not all published; they are stored and go out on the retry.
    #[error("follow-up events were not all published: {message}")]
    Publish {
        /// What failed.
        message: String,
        /// Whether a retry may succeed.
        retryable: bool,
    },
    /// The consumer is missing something this record needs (a publisher, a store).
    #[error("consumer misconfigured: {0}")]
    Misconfigured(String),
}

impl RecordError {
    /// Whether the record should come back later (true) or go to the DLQ now (false).
    pub fn is_retryable(&self) -> bool {
        match self {
            RecordError::Transient(_) | RecordError::Panic(_) | RecordError::InProgress { .. } => {
                true
            }
            RecordError::Idempotency(err) => err.is_retryable(),
            RecordError::Publish { retryable, .. } => *retryable,
            RecordError::EmptyBody
            | RecordError::Decode(_)
            | RecordError::Unhandled(_)
            | RecordError::Permanent(_)
            | RecordError::Misconfigured(_) => false,
        }
    }

    /// A short, stable name for logs, metrics and the DLQ's `errorKind` attribute.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordError::EmptyBody => "EmptyBody",
            RecordError::Decode(err) => err.kind(),
            RecordError::Unhandled(_) => "UnhandledEventType",
            RecordError::Permanent(_) => "HandlerPermanent",
            RecordError::Transient(_) => "HandlerTransient",
            RecordError::Panic(_) => "HandlerPanic",
            RecordError::InProgress { .. } => "InProgress",
            RecordError::Idempotency(err) => err.kind(),
            RecordError::Publish { .. } => "PublishFailed",
            RecordError::Misconfigured(_) => "Misconfigured",
        }
    }
}

/// The whole invocation failed: reported as a Lambda error so it shows in the `Errors` metric.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Every record failed (and none went to the DLQ).
    #[error("all {count} records failed; first: {first}")]
    AllFailed {
        /// How many records.
        count: usize,
        /// The first record's error.
        first: String,
    },
}
