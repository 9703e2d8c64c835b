//! The consumer's effects, as ports: where a handler's follow-up events go ([`EventSink`]) and
//! where a record that cannot succeed is set aside ([`DeadLetterSink`]). The idempotency store
//! is the third port ([`crate::idempotency::IdempotencyStore`]).
//!
//! Adapters: [`Publisher`] (SNS) is an event sink, the SQS dead-letter adapter (built by
//! [`Consumer::with_sqs`](super::Consumer::with_sqs)) a dead-letter sink; [`RecordingSink`] and
//! [`RecordingDeadLetters`] keep what they are given in memory, for tests.

use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;

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

/// Where a record that failed for good is set aside, and how a retry is delayed.
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
}

/// An [`EventSink`] that keeps every event it is given.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<Event>>,
}

impl RecordingSink {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event sent so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl EventSink for RecordingSink {
    async fn send(&self, events: &[Event]) -> Result<(), SinkError> {
        if let Ok(mut recorded) = self.events.lock() {
            recorded.extend_from_slice(events);
        }
        Ok(())
    }
}

/// One record a [`RecordingDeadLetters`] was given.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct DeadLetter {
    /// The SQS message id.
    pub message_id: String,
    /// The record's body, unchanged.
    pub body: String,
    /// [`RecordError::kind`].
    pub error_kind: String,
    /// The error's text.
    pub error_message: String,
}

/// A [`DeadLetterSink`] that keeps what it is given: dead letters and retry delays.
#[derive(Debug, Default)]
pub struct RecordingDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
    delays: Mutex<Vec<(String, Duration)>>,
}

impl RecordingDeadLetters {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record set aside so far, in order.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.letters.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every retry delay asked for so far: message id and delay.
    pub fn delays(&self) -> Vec<(String, Duration)> {
        self.delays.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl DeadLetterSink for RecordingDeadLetters {
    async fn dead_letter(
        &self,
        record: &SqsMessage,
        meta: &RecordMeta,
        _consumer: &str,
        error: &RecordError,
    ) -> Result<(), String> {
        if let Ok(mut letters) = self.letters.lock() {
            letters.push(DeadLetter {
                message_id: meta.message_id.clone(),
                body: record.body.clone().unwrap_or_default(),
                error_kind: error.kind().to_owned(),
                error_message: error.to_string(),
            });
        }
        Ok(())
    }

    async fn delay_retry(&self, _record: &SqsMessage, meta: &RecordMeta, delay: Duration) {
        if let Ok(mut delays) = self.delays.lock() {
            delays.push((meta.message_id.clone(), delay));
        }
    }
}
