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
    /// An SNS control message (a subscription or unsubscription confirmation) reached the
    /// queue instead of an event: the subscription is not confirmed, or was removed.
    #[error(
        "an SNS {message_type} for topic {topic_arn} reached the queue, not an event; confirm or remove the subscription (SubscribeURL in the body)"
    )]
    SnsControlMessage {
        /// `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
        message_type: String,
        /// The topic it is about.
        topic_arn: String,
    },
    /// The handler failed; it said whether retrying can help.
    #[error("handler failed: {message}")]
    Handler {
        /// The handler's name for the failure (`HandlerPermanent`, `AwsPermanent`, …).
        kind: &'static str,
        /// The error and its causes.
        message: String,
        /// Whether a retry may succeed.
        retryable: bool,
        /// How soon the first retry may succeed, if sooner than the backoff.
        first_retry_after: Option<std::time::Duration>,
        /// It waits for another message to be processed first.
        waits_for_cause: bool,
    },
    /// Processing the record panicked (decoding, idempotency, the handler or publishing).
    #[error("processing panicked: {0}")]
    Panic(String),
    /// The invocation's deadline came before the record finished; it is returned for a retry
    /// so the batch answers in time.
    #[error("the invocation's deadline came before the record finished")]
    DeadlineExceeded,
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
            RecordError::Panic(_)
            | RecordError::InProgress { .. }
            | RecordError::DeadlineExceeded => true,
            RecordError::Handler { retryable, .. } => *retryable,
            RecordError::Idempotency(err) => err.is_retryable(),
            RecordError::Publish { retryable, .. } => *retryable,
            RecordError::EmptyBody
            | RecordError::Decode(_)
            | RecordError::Unhandled(_)
            | RecordError::SnsControlMessage { .. }
            | RecordError::Misconfigured(_) => false,
        }
    }

    /// Whether the record waits for something another message or invocation is about to do
    /// (its cause's event, another invocation's hold on the same event), rather than for a
    /// dependency to recover: a wait that may outlast the queue's receive budget.
    pub fn waits_for_another_message(&self) -> bool {
        match self {
            RecordError::Handler {
                waits_for_cause, ..
            } => *waits_for_cause,
            RecordError::InProgress { .. } => true,
            _ => false,
        }
    }

    /// A short, stable name for logs, metrics and the DLQ's `errorKind` attribute.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordError::EmptyBody => "EmptyBody",
            RecordError::Decode(err) => err.kind(),
            RecordError::Unhandled(_) => "UnhandledEventType",
            RecordError::SnsControlMessage { message_type, .. } => {
                if message_type == "UnsubscribeConfirmation" {
                    "SnsUnsubscribeConfirmation"
                } else {
                    "SnsSubscriptionConfirmation"
                }
            }
            RecordError::Handler { kind, .. } => kind,
            RecordError::Panic(_) => "Panic",
            RecordError::DeadlineExceeded => "DeadlineExceeded",
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
