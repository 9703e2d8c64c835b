//! What a consumer's unit tests (and the local runner) need to play AWS's part, behind the
//! `testing` feature: the Lambda `SqsEvent` an event source mapping would deliver
//! ([`sqs_event`]), in-memory adapters of the effect ports ([`RecordingSink`],
//! [`RecordingDeadLetters`], [`RecordingMetrics`]), [`TestConsumer`], a consumer wired to in-memory adapters of
//! every port and fed one event at a time, and [`LogCapture`], what was logged.
//!
//! ```
//! use std::sync::Arc;
//! use orderflow::consume::{Consumer, HandlerError, Message, Outcome, RecordOutcome};
//! use orderflow::event::{OrderPlaced, examples};
//! use orderflow::testing::TestConsumer;
//!
//! async fn accept(_: Message<OrderPlaced>, _: Arc<()>) -> Result<Outcome, HandlerError> {
//!     Ok(Outcome::done())
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let consumer = TestConsumer::new(Consumer::new("shop", ()).on(accept).emits_no_events()).unwrap();
//! let placed = examples::order_placed();
//! assert!(matches!(consumer.deliver(&placed).await?, RecordOutcome::Handled));
//! assert!(matches!(consumer.deliver(&placed).await?, RecordOutcome::Duplicate));
//! # Ok::<(), orderflow::EventError>(())
//! # }).unwrap();
//! ```

mod logs;
mod sinks;
pub mod sqs_event;

use std::sync::Arc;

pub use logs::{CaptureGuard, LogCapture};
pub use sinks::{DeadLetter, RecordingDeadLetters, RecordingMetrics, RecordingSink, SentBack};

use crate::consume::{Consumer, ConsumerConfigError, Invocation, RecordOutcome};
use crate::event::{Event, EventError};
use crate::idempotency::{Idempotency, InMemoryIdempotencyStore};

/// The queue a [`TestConsumer`] says its records come from.
pub const TEST_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:test-queue";

/// A consumer wired to in-memory adapters of every port (idempotency store, event sink, dead
/// letters), fed events as SQS would deliver them: each event a record of its own batch.
pub struct TestConsumer<S> {
    consumer: Consumer<S>,
    published: Arc<RecordingSink>,
    dead_letters: Arc<RecordingDeadLetters>,
}

impl<S: Send + Sync + 'static> TestConsumer<S> {
    /// Wires `handlers` (a consumer with its routes and options) to the in-memory adapters;
    /// fails as [`Consumer::ready`] does. Any idempotency, event sink or dead-letter sink the
    /// consumer had is replaced (a custom key or TTL included: give the consumer to
    /// [`Consumer::with_idempotency`] yourself to test those).
    pub fn new(handlers: Consumer<S>) -> Result<Self, ConsumerConfigError> {
        let published = Arc::new(RecordingSink::new());
        let dead_letters = Arc::new(RecordingDeadLetters::new());
        let consumer = handlers
            .with_idempotency(Idempotency::new(Arc::new(InMemoryIdempotencyStore::new())))
            .with_event_sink(published.clone())
            .with_dead_letter_sink(dead_letters.clone())
            .ready()?;
        Ok(TestConsumer {
            consumer,
            published,
            dead_letters,
        })
    }

    /// Delivers `event` once, as a batch of one record; returns what became of it. Fails only
    /// if the event cannot be encoded (see [`Event::encode`]).
    pub async fn deliver(&self, event: &Event) -> Result<RecordOutcome, EventError> {
        Ok(self.deliver_body(&event.encode()?).await)
    }

    /// Delivers `body` (any message body, a valid event or not) once, as a batch of one record.
    pub async fn deliver_body(&self, body: &str) -> RecordOutcome {
        let batch = sqs_event::bodies_as_records(&[body], TEST_QUEUE_ARN);
        let mut outcome = self.consumer.process(&batch, &Invocation::default()).await;
        match outcome.records.pop() {
            Some((_, outcome)) => outcome,
            // process answers every record it is given.
            None => RecordOutcome::NotAttempted("no outcome for the record"),
        }
    }

    /// Every follow-up event published so far, in order (a duplicate publishes its stored
    /// follow-ups again).
    pub fn published(&self) -> Vec<Event> {
        self.published.events()
    }

    /// Every record set aside so far, with its reason.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead_letters.letters()
    }

    /// The handlers' shared state.
    pub fn state(&self) -> Arc<S> {
        self.consumer.state()
    }

    /// The wired consumer.
    pub fn consumer(&self) -> &Consumer<S> {
        &self.consumer
    }
}
