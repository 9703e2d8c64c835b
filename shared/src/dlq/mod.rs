//! Operating the dead-letter queues: find them, look at what they hold without taking it, move
//! messages back to the queue they came from, purge. What `orderflow dlq` does.
//!
//! A DLQ here is a queue some other queue's redrive policy names (`ListDeadLetterSourceQueues`
//! finds its sources), so discovery works the same against AWS, moto, LocalStack and the local
//! runner. A message the consumer dead-lettered itself names its source in `sourceQueue`; one
//! SQS moved by the redrive policy is matched to its source through that policy.
//!
//! Safe by default: looking ([`Dlq::peek`]) leaves every message where it was (received with a
//! short visibility timeout, made visible again once the queue is read); a replay deletes a
//! message from the DLQ only after the send to its source queue succeeded, so a crash in between
//! leaves it in both queues, never in neither (the consumer's idempotency absorbs the copy).

mod message;
mod sqs;

pub use message::{Attribute, DeadLetterMessage, EventSummary};
pub use sqs::Dlq;

use crate::aws::AwsError;

/// A queue, by its three names.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct QueueRef {
    /// The queue's name (the ARN's last part).
    pub name: String,
    /// Its URL, what SQS calls take.
    pub url: String,
    /// Its ARN, what redrive policies and `sourceQueue` name.
    pub arn: String,
}

/// A dead-letter queue and the queues whose redrive policy names it.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct DeadLetterQueue {
    /// The DLQ itself.
    pub queue: QueueRef,
    /// The queues that send their failures here (usually one).
    pub sources: Vec<QueueRef>,
}

impl DeadLetterQueue {
    /// The queue `message` came from: the one its `sourceQueue` attribute names, else the
    /// DLQ's only source. `None` when that cannot be told.
    pub fn source_of(&self, message: &DeadLetterMessage) -> Option<&QueueRef> {
        match &message.source_queue {
            Some(arn) => self.sources.iter().find(|s| &s.arn == arn),
            None => match self.sources.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }
}

/// Which messages an operation takes.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Selection {
    /// Every message.
    All,
    /// Messages whose event has one of these ids.
    EventIds(Vec<String>),
    /// Messages dead-lettered with this `errorKind`.
    ErrorKind(String),
}

impl Selection {
    /// Whether `message` is selected.
    pub fn takes(&self, message: &DeadLetterMessage) -> bool {
        match self {
            Selection::All => true,
            Selection::EventIds(ids) => message
                .event
                .as_ref()
                .is_some_and(|e| ids.iter().any(|id| id == &e.event_id)),
            Selection::ErrorKind(kind) => message.error_kind.as_deref() == Some(kind.as_str()),
        }
    }
}

/// How a replay goes.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOptions {
    /// Say what would move; move nothing.
    pub dry_run: bool,
    /// At most this many messages a second.
    pub rate: Option<f64>,
    /// How long each message is held invisible while the replay has it (the ones it takes
    /// leave within seconds; the ones it does not take are made visible again at the end, or
    /// when this ends if the replay dies).
    pub hold: std::time::Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            dry_run: false,
            rate: None,
            hold: std::time::Duration::from_secs(120),
        }
    }
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayReport {
    /// Messages sent back to their source queue and deleted from the DLQ (or, with a dry run,
    /// that would have been).
    pub moved: Vec<(DeadLetterMessage, QueueRef)>,
    /// Messages not selected, left where they were.
    pub skipped: usize,
    /// Selected messages that were not moved, with why (each is still in the DLQ).
    pub failed: Vec<(DeadLetterMessage, String)>,
    /// Moved by SQS's own message move task (`StartMessageMoveTask`), not one by one: how
    /// many, of how many SQS counted, to which queue.
    pub by_move_task: Option<(u64, Option<u64>, QueueRef)>,
    /// Why SQS's move task was not used, when it was asked for and refused.
    pub move_task_refused: Option<String>,
    /// Why the replay stopped before the queue was read to the end (the endpoint failed).
    pub stopped: Option<String>,
}

/// Why a DLQ operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// An SQS call failed (throttling, the endpoint down, access denied).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// No queue by that name or URL.
    #[error("no queue `{0}` (give its name, URL or ARN)")]
    UnknownQueue(String),
    /// The queue is not any queue's dead-letter queue.
    #[error("`{0}` is not a dead-letter queue: no queue's redrive policy names it")]
    NotADeadLetterQueue(String),
    /// SQS's message move task failed or did not end.
    #[error("{0}")]
    MoveTask(String),
}

impl crate::Classify for DlqError {
    fn is_retryable(&self) -> bool {
        matches!(self, DlqError::Aws(err) if err.retryable)
    }

    fn kind(&self) -> &'static str {
        match self {
            DlqError::Aws(err) => err.kind(),
            DlqError::UnknownQueue(_) => "UnknownQueue",
            DlqError::NotADeadLetterQueue(_) => "NotADeadLetterQueue",
            DlqError::MoveTask(_) => "MoveTask",
        }
    }
}
