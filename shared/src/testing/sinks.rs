//! In-memory adapters of the consumer's effect ports: they keep what they are given, for a test
//! to look at.

use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;

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
