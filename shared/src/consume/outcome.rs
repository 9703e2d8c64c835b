//! What happened to each record of a batch, and the response Lambda reads.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};

use super::RecordError;
use crate::event::EventType;

/// What happened to one record.
#[derive(Debug)]
pub enum RecordOutcome {
    /// The handler ran and its effects were recorded.
    Handled,
    /// A duplicate of an event already handled: the stored outcome was used, the handler did
    /// not run.
    Duplicate,
    /// No handler for this event type (and the consumer is not strict): acknowledged.
    Ignored(EventType),
    /// A permanent failure, sent to the DLQ with its reason and acknowledged.
    DeadLettered(RecordError),
    /// Reported failed: it comes back after its visibility timeout (or goes to the DLQ by the
    /// redrive policy).
    Failed(RecordError),
    /// Failed one receive before the queue's last while waiting for another message: a copy
    /// was sent back to the queue to wait on, and the original acknowledged.
    SentBack(RecordError),
    /// Not run: an earlier message of its FIFO group failed, or the deadline was too close.
    NotAttempted(&'static str),
}

impl RecordOutcome {
    /// A short name of how the record ended, as logged (`handled`, `duplicate`, `ignored`,
    /// `dead_lettered`, `failed`, `sent_back`, `not_attempted`).
    pub fn label(&self) -> &'static str {
        match self {
            RecordOutcome::Handled => "handled",
            RecordOutcome::Duplicate => "duplicate",
            RecordOutcome::Ignored(_) => "ignored",
            RecordOutcome::DeadLettered(_) => "dead_lettered",
            RecordOutcome::Failed(_) => "failed",
            RecordOutcome::SentBack(_) => "sent_back",
            RecordOutcome::NotAttempted(_) => "not_attempted",
        }
    }

    /// The error's kind (the DLQ's `errorKind`), if the record failed.
    pub fn error_kind(&self) -> Option<&'static str> {
        match self {
            RecordOutcome::DeadLettered(err)
            | RecordOutcome::Failed(err)
            | RecordOutcome::SentBack(err) => Some(err.kind()),
            _ => None,
        }
    }

    /// Whether the record must be returned in `batchItemFailures`.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            RecordOutcome::Failed(_) | RecordOutcome::NotAttempted(_)
        )
    }
}

/// How a duplicate was recognised, cheapest first.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum DuplicateBy {
    /// The warm environment's cache of completed keys: no request.
    Cache,
    /// The idempotency record, found completed when acquiring it.
    Record,
    /// The transactional commit, cancelled because the record was already completed: the
    /// handler ran (it only reads), its writes were discarded.
    Transaction,
}

/// What one record's processing measured, for the invocation's metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordStats {
    /// From start to settled (unwrap, decode, idempotency, handler, follow-ups, DLQ hand-off or
    /// retry delay); zero for a record not attempted.
    pub duration: Duration,
    /// Now − the event's `occurredAt`, once decoded (zero for an event from the future).
    pub event_age: Option<Duration>,
    /// Follow-up events handed to the event sink.
    pub follow_ups: usize,
    /// How it was found to be a duplicate, if it was one.
    pub duplicate_by: Option<DuplicateBy>,
}

/// Every record's outcome, in batch order.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// `(message id, outcome)` per record.
    pub records: Vec<(String, RecordOutcome)>,
    /// What each record's processing measured, in the same order.
    pub stats: Vec<RecordStats>,
}

impl BatchOutcome {
    /// The partial batch response: the ids of every record to be delivered again.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .records
            .iter()
            .filter(|(_, outcome)| outcome.is_failure())
            .map(|(id, _)| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                failure
            })
            .collect();
        response
    }

    /// The outcome of the record with `message_id`.
    pub fn get(&self, message_id: &str) -> Option<&RecordOutcome> {
        self.records
            .iter()
            .find(|(id, _)| id == message_id)
            .map(|(_, o)| o)
    }

    /// Whether there were records and every one must be delivered again.
    pub fn all_failed(&self) -> bool {
        !self.records.is_empty() && self.records.iter().all(|(_, o)| o.is_failure())
    }
}
