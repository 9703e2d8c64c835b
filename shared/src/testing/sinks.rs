//! In-memory adapters of the consumer's effect ports: they keep what they are given, for a test
//! to look at.

use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::{DateTime, Utc};

use crate::consume::{DeadLetterSink, EventSink, RecordError, RecordMeta, SinkError};
use crate::event::Event;
use crate::telemetry::metrics::{InvocationMetrics, MetricsSink};

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

/// A record a [`RecordingDeadLetters`] was asked to send back to its queue.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct SentBack {
    /// The SQS message id of the original.
    pub message_id: String,
    /// The copy's delay.
    pub delay: Duration,
    /// When the wait started.
    pub waiting_since: DateTime<Utc>,
    /// The receives of the original and its earlier copies.
    pub receives: u32,
}

/// A [`DeadLetterSink`] that keeps what it is given: dead letters, retry delays and records
/// sent back, for a queue whose receive budget is set with
/// [`RecordingDeadLetters::with_max_receive_count`].
#[derive(Debug, Default)]
pub struct RecordingDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
    delays: Mutex<Vec<(String, Duration)>>,
    sent_back: Mutex<Vec<SentBack>>,
    max_receive_count: Option<u32>,
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

    /// Says the queue's redrive policy allows `max` receives.
    pub fn with_max_receive_count(mut self, max: u32) -> Self {
        self.max_receive_count = Some(max);
        self
    }

    /// Every record sent back to its queue so far, in order.
    pub fn sent_back(&self) -> Vec<SentBack> {
        self.sent_back.lock().map(|s| s.clone()).unwrap_or_default()
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

    async fn max_receive_count(&self, _meta: &RecordMeta) -> Option<u32> {
        self.max_receive_count
    }

    async fn send_back(
        &self,
        _record: &SqsMessage,
        meta: &RecordMeta,
        delay: Duration,
        waiting_since: DateTime<Utc>,
    ) -> Result<(), String> {
        if let Ok(mut sent_back) = self.sent_back.lock() {
            sent_back.push(SentBack {
                message_id: meta.message_id.clone(),
                delay,
                waiting_since,
                receives: meta.receives(),
            });
        }
        Ok(())
    }
}

/// A [`MetricsSink`] that keeps every invocation's metrics.
#[derive(Debug, Default)]
pub struct RecordingMetrics {
    invocations: Mutex<Vec<InvocationMetrics>>,
}

impl RecordingMetrics {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every invocation's metrics so far, in order.
    pub fn invocations(&self) -> Vec<InvocationMetrics> {
        self.invocations
            .lock()
            .map(|i| i.clone())
            .unwrap_or_default()
    }
}

impl MetricsSink for RecordingMetrics {
    fn record(&self, metrics: &InvocationMetrics) {
        if let Ok(mut recorded) = self.invocations.lock() {
            recorded.push(metrics.clone());
        }
    }
}
