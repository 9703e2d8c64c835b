//! Why an event was not published.

use uuid::Uuid;

use crate::event::EventError;

/// Why one event was not published.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PublishError {
    /// The event breaks the contract (or is too large) and was never sent.
    #[error("event {event_id} was not sent: {source}")]
    Invalid {
        /// The event's id.
        event_id: Uuid,
        /// What is wrong with it.
        source: EventError,
    },
    /// SNS answered, and refused this message.
    #[error("SNS rejected event {event_id} after {attempts} attempt(s): {code}: {message}")]
    Rejected {
        /// The event's id.
        event_id: Uuid,
        /// SNS's error code, e.g. `InvalidParameter` or `Throttled`.
        code: String,
        /// SNS's explanation.
        message: String,
        /// Whether a later retry could succeed (throttling, internal errors).
        retryable: bool,
        /// How many times it was sent.
        attempts: u32,
    },
    /// Not sent: an earlier event of its FIFO message group failed, and sending this one would
    /// put it ahead of that one.
    #[error(
        "event {event_id} was not sent: it follows event {behind} in its message group, which was not published"
    )]
    HeldBack {
        /// The event's id.
        event_id: Uuid,
        /// The earlier event of the group that failed.
        behind: Uuid,
        /// Whether the earlier one's failure may pass (then so may this one's).
        retryable: bool,
    },
    /// The request did not get an answer about this message (network, timeout, 5xx, throttled
    /// request).
    #[error("publishing event {event_id} failed after {attempts} attempt(s): {message}")]
    Request {
        /// The event's id.
        event_id: Uuid,
        /// The SDK's description of the failure, with its causes.
        message: String,
        /// Whether a later retry could succeed.
        retryable: bool,
        /// How many times it was sent.
        attempts: u32,
    },
}

impl PublishError {
    /// Whether publishing the same event again later could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            PublishError::Invalid { .. } => false,
            PublishError::Rejected { retryable, .. }
            | PublishError::Request { retryable, .. }
            | PublishError::HeldBack { retryable, .. } => *retryable,
        }
    }

    /// The id of the event that was not published.
    pub fn event_id(&self) -> Uuid {
        match self {
            PublishError::Invalid { event_id, .. }
            | PublishError::Rejected { event_id, .. }
            | PublishError::Request { event_id, .. }
            | PublishError::HeldBack { event_id, .. } => *event_id,
        }
    }
}
