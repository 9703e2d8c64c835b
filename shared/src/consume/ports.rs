//! The consumer's effects, as ports: where a handler's follow-up events go ([`EventSink`]) and
//! where a record that cannot succeed is set aside ([`DeadLetterSink`]). The idempotency store
//! is the third port ([`crate::idempotency::IdempotencyStore`]).
//!
//! Adapters: [`Publisher`] (SNS) is an event sink, the SQS dead-letter adapter (built by
//! [`Consumer::with_sqs`](super::Consumer::with_sqs)) a dead-letter sink; the `testing` feature's
//! `RecordingSink` and `RecordingDeadLetters` keep what they are given in memory.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::{DateTime, Utc};

use super::{RecordError, RecordMeta};
use crate::event::Event;
use crate::publish::Publisher;

/// Where a handler's follow-up events go.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    /// Sends every event of `events`, or says which failed and whether a retry can help.
    async fn send(&self, events: &[Event]) -> Result<(), SinkError>;
}

/// Some events were not sent.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// What failed, for the record's error.
    pub message: String,
    /// Whether sending again can succeed (throttling, a service error), or not (a rejected event).
    pub retryable: bool,
}

#[async_trait::async_trait]
impl EventSink for Publisher {
    async fn send(&self, events: &[Event]) -> Result<(), SinkError> {
        let report = self.publish_batch(events).await;
        let failures: Vec<_> = report.failures().collect();
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(SinkError {
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

/// The record's queue as the consumer uses it beyond acknowledging: where a record that failed
/// for good is set aside, how a retry is delayed, how many receives the queue allows, and
/// how a record that must wait longer than that is sent back to it.
#[async_trait::async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Sets `record` aside, unchanged, with why it failed; an `Err` says the hand-off did not
    /// happen (the record is then reported failed, never lost).
    async fn dead_letter(
        &self,
        record: &SqsMessage,
        meta: &RecordMeta,
        consumer: &str,
        error: &RecordError,
    ) -> Result<(), String>;

    /// Keeps a transiently failed record away for `delay` before its next attempt (best effort).
    async fn delay_retry(&self, record: &SqsMessage, meta: &RecordMeta, delay: Duration);

    /// The receives the record's queue allows before its redrive policy moves the record to
    /// the DLQ (`maxReceiveCount`), if known. A record that fails at that receive is not left
    /// to the redrive policy, which would set it aside without a reason.
    async fn max_receive_count(&self, _meta: &RecordMeta) -> Option<u32> {
        None
    }

    /// Sends a copy of `record` back to its own queue, to be received after `delay`, marked as
    /// waiting since `waiting_since` (the consumer acknowledges the original once this returns
    /// `Ok`). An `Err` says no copy was sent.
    async fn send_back(
        &self,
        _record: &SqsMessage,
        _meta: &RecordMeta,
        _delay: Duration,
        _waiting_since: DateTime<Utc>,
    ) -> Result<(), String> {
        Err("this dead-letter sink cannot send a record back to its queue".to_owned())
    }
}
