//! The SQS batch consumer: what Powertools' batch processing does, for orderflow events.
//!
//! [`Consumer::handle`] takes the raw `SqsEvent` (never a typed one: one undecodable record
//! must not fail the whole invocation) and returns the partial batch response for
//! `ReportBatchItemFailures`. Each record is unwrapped (SNS notification or raw delivery),
//! decoded and validated, and dispatched to the handler registered for its `eventType`.
//!
//! - Standard queues: records run concurrently up to `max_concurrency`. FIFO queues (the
//!   source ARN ends in `.fifo`): records of one message group run in order, and once one
//!   fails the rest of its group in this batch is reported failed without running; other
//!   groups go on.
//! - Permanent failures (a bad event, an unsupported version, a handler's permanent error, a
//!   payload mismatch) go straight to the queue's DLQ with attributes saying why, and are
//!   acknowledged: a poison message costs one attempt. If the DLQ send fails, the record is
//!   reported failed, never lost.
//! - Transient failures (a handler's transient error, a panic, throttling, a duplicate in
//!   progress) are reported failed, and their visibility is set with exponential backoff and
//!   full jitter on the receive count.
//! - If every record fails, the invocation fails too, so it shows in Lambda's error metrics.
//!
//! ```
//! use std::sync::Arc;
//! use orderflow::consume::{Consumer, HandlerError, Message, Outcome, RecordOutcome};
//! use orderflow::event::{OrderPlaced, PaymentProcessed, examples};
//!
//! struct State;
//!
//! async fn charge(order: Message<OrderPlaced>, _state: Arc<State>) -> Result<Outcome, HandlerError> {
//!     let paid = PaymentProcessed {
//!         order_id: order.data.order_id.clone(),
//!         payment_id: format!("pay-{}", order.data.order_id),
//!         amount: order.data.total,
//!         currency: order.data.currency.clone(),
//!     };
//!     Ok(Outcome::done().publish(order.follow_up(paid)))
//! }
//!
//! let consumer = Consumer::new("payment", State).on(charge);
//! // Deployed: orderflow::lambda::run_sqs(consumer.wired(&sdk, &env)). In a unit test, every
//! // port in memory (feature `testing`):
//! let consumer = orderflow::testing::TestConsumer::new(consumer).expect("every port given");
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let outcome = consumer.deliver(&examples::order_placed()).await?;
//! assert!(matches!(outcome, RecordOutcome::Handled));
//! assert_eq!(consumer.published().len(), 1);
//! # Ok::<(), orderflow::EventError>(())
//! # }).unwrap();
//! ```

mod backoff;
mod error;
mod handler;
mod idempotent;
mod meta;
mod outcome;
mod ports;
mod record;
mod settle;
mod sqs_actions;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::stream::{self, StreamExt};
use tracing::{Instrument, debug, info, warn};

pub use backoff::{TotalWait, VisibilityBackoff};
pub use error::{BatchError, RecordError};
pub use handler::{BoxError, HandlerError, Message, Outcome, RecordMeta};
pub use outcome::{BatchOutcome, DuplicateBy, RecordOutcome, RecordStats};
pub use ports::{DeadLetterSink, EventSink, SinkError};

use crate::event::{EventData, EventType};
use crate::idempotency::Idempotency;
use crate::publish::Publisher;
use crate::telemetry::metrics::{EmfMetrics, InvocationMetrics, MetricsConfig, MetricsSink};
use handler::{ErasedHandler, TypedHandler};
use sqs_actions::SqsActions;

/// A consumer was built without a port one of its routes needs.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerConfigError {
    /// `on_transactional` commits its writes with the idempotency record: it needs the store.
    #[error(
        "consumer {consumer}: the transactional handlers for {event_types:?} need an idempotency store (with_idempotency, or wired)"
    )]
    TransactionalWithoutStore {
        /// The consumer's name.
        consumer: String,
        /// The event types registered with `on_transactional`.
        event_types: Vec<EventType>,
    },
    /// Handlers may emit follow-up events and nothing would send them.
    #[error(
        "consumer {consumer}: no event sink for the handlers' follow-up events (with_publisher or wired with EVENTS_TOPIC_ARN), and it was not declared to emit none (emits_no_events)"
    )]
    NoEventSink {
        /// The consumer's name.
        consumer: String,
    },
}

/// The invocation a batch arrived in.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    /// Lambda's request id.
    pub request_id: String,
    /// When Lambda stops the invocation; `None` outside Lambda.
    pub deadline: Option<SystemTime>,
    /// The execution environment's first invocation (counted in the `ColdStart` metric).
    pub cold_start: bool,
    /// The invocation's X-Ray trace id (written beside its metrics).
    pub trace_id: Option<String>,
}

impl Invocation {
    /// Time left before the deadline (`None` without one).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.duration_since(SystemTime::now()).unwrap_or_default())
    }
}

/// What every consumer function reads from its environment.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ConsumerEnv {
    /// `IDEMPOTENCY_TABLE`: where idempotency records live.
    pub idempotency_table: String,
    /// `EVENTS_TOPIC_ARN`: where follow-up events go (optional for consumers that emit none).
    pub events_topic_arn: Option<String>,
    /// `DEAD_LETTER_QUEUE_URL`: the DLQ (optional: the queue's redrive policy names it).
    pub dead_letter_queue_url: Option<String>,
    /// The `POWERTOOLS_METRICS_*` variables: where the invocation's metrics go.
    pub metrics: MetricsConfig,
}

impl ConsumerEnv {
    /// Reads the variables in [`crate::env::vars`].
    pub fn from_vars(vars: &crate::env::Vars) -> Result<Self, crate::env::EnvError> {
        use crate::env::vars as names;
        Ok(ConsumerEnv {
            idempotency_table: vars.required(names::IDEMPOTENCY_TABLE)?,
            events_topic_arn: vars.optional(names::EVENTS_TOPIC_ARN),
            dead_letter_queue_url: vars.optional(names::DEAD_LETTER_QUEUE_URL),
            metrics: MetricsConfig::from_vars(vars)?,
        })
    }
}

/// Tuning of a [`Consumer`].
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// Records processed at once on a standard queue (message groups at once on FIFO).
    pub max_concurrency: usize,
    /// Treat an event type without a handler as a permanent error instead of acknowledging it.
    pub strict: bool,
    /// Fail the invocation when every record failed.
    pub fail_when_all_fail: bool,
    /// Delay before a transiently failed record is retried.
    pub visibility_backoff: VisibilityBackoff,
    /// How long in all a record waiting for another message (its cause; see
    /// [`Classify::waits_for_cause`](crate::Classify::waits_for_cause)) may wait: past the
    /// queue's receive budget it is sent back to the queue as a copy, until this much time has
    /// passed since it first arrived; then it goes to the DLQ with its reason.
    pub max_wait_for_cause: Duration,
    /// Records not started this close to the deadline are returned unprocessed, so a slow
    /// batch ends with a partial response instead of a timeout that retries everything.
    pub deadline_margin: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            max_concurrency: 10,
            strict: false,
            fail_when_all_fail: true,
            visibility_backoff: VisibilityBackoff::default(),
            // An hour: far longer than the cause's own retries can delay it (its queue's
            // backoff sets it aside after 2.5–5 minutes, crashes add the visibility timeout),
            // short enough that an event whose cause is in a DLQ waits for the operator there,
            // with its reason.
            max_wait_for_cause: Duration::from_secs(60 * 60),
            deadline_margin: Duration::from_millis(500),
        }
    }
}

/// Completed keys a warm execution environment remembers.
const CACHE_CAPACITY: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(1024) {
    Some(n) => n,
    None => panic!("1024 is not zero"),
};

struct Route<S> {
    handler: Arc<dyn ErasedHandler<S>>,
    /// The handler returns DynamoDB writes, committed with the idempotency record.
    transactional: bool,
}

/// Consumes orderflow events from SQS batches and dispatches them to typed handlers.
pub struct Consumer<S> {
    name: Arc<str>,
    state: Arc<S>,
    routes: HashMap<EventType, Route<S>>,
    options: ConsumerOptions,
    /// Where follow-up events go.
    events: Option<Arc<dyn EventSink>>,
    /// The handlers were declared to emit no follow-up events (so no sink is needed).
    emits_no_events: bool,
    /// Where permanent failures are set aside.
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    idempotency: Option<Idempotency>,
    /// Where each invocation's metrics go.
    metrics: Option<Arc<dyn MetricsSink>>,
}

impl<S: Send + Sync + 'static> Consumer<S> {
    /// A consumer named `name` (the function name: it prefixes idempotency keys and names the
    /// producer of follow-up events) over shared `state`.
    pub fn new(name: impl Into<Arc<str>>, state: S) -> Self {
        Consumer {
            name: name.into(),
            state: Arc::new(state),
            routes: HashMap::new(),
            options: ConsumerOptions::default(),
            events: None,
            emits_no_events: false,
            dead_letters: None,
            idempotency: None,
            metrics: None,
        }
    }

    /// Routes events of `T`'s type to `handler`, an `async fn(Message<T>, Arc<S>)`.
    ///
    /// With idempotency, the key is acquired before the handler runs and completed after.
    pub fn on<T, F, Fut>(self, handler: F) -> Self
    where
        T: EventData,
        F: Fn(Message<T>, Arc<S>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Outcome, HandlerError>> + Send + 'static,
    {
        self.route(T::EVENT_TYPE, Arc::new(TypedHandler::new(handler)), false)
    }

    /// Routes events of `T`'s type to a handler whose effect is the DynamoDB writes it returns:
    /// they are committed with the idempotency record in one transaction. The handler may read
    /// but must not change anything itself. Needs [`Consumer::with_idempotency`].
    ///
    /// A write is made by a port's adapter: a DynamoDB `TransactWriteItem`
    /// ([`Write::dynamodb`](crate::idempotency::Write::dynamodb)) in production, a condition and
    /// a change in memory ([`Write::in_memory`](crate::idempotency::Write::in_memory)) in a
    /// unit test, committed with the record all or nothing:
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use orderflow::consume::{Consumer, HandlerError, Message, Outcome, RecordOutcome};
    /// use orderflow::event::{OrderPlaced, examples};
    /// use orderflow::idempotency::Write;
    ///
    /// #[derive(Default)]
    /// struct Counter(Arc<Mutex<u32>>);
    ///
    /// async fn count(_: Message<OrderPlaced>, state: Arc<Counter>) -> Result<Outcome, HandlerError> {
    ///     let counter = state.0.clone();
    ///     let add_one = Write::in_memory(
    ///         "orders placed + 1",
    ///         Arc::new(|| Ok(())),
    ///         Arc::new(move || *counter.lock().unwrap() += 1),
    ///     );
    ///     Ok(Outcome::done().write(add_one))
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let consumer = Consumer::new("analytics", Counter::default())
    ///     .on_transactional(count)
    ///     .emits_no_events();
    /// let consumer = orderflow::testing::TestConsumer::new(consumer).expect("every port given");
    /// let placed = examples::order_placed();
    /// consumer.deliver(&placed).await?;
    /// assert!(matches!(consumer.deliver(&placed).await?, RecordOutcome::Duplicate));
    /// assert_eq!(*consumer.state().0.lock().unwrap(), 1);
    /// # Ok::<(), orderflow::EventError>(())
    /// # }).unwrap();
    /// ```
    pub fn on_transactional<T, F, Fut>(self, handler: F) -> Self
    where
        T: EventData,
        F: Fn(Message<T>, Arc<S>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Outcome, HandlerError>> + Send + 'static,
    {
        self.route(T::EVENT_TYPE, Arc::new(TypedHandler::new(handler)), true)
    }

    fn route(
        mut self,
        event_type: EventType,
        handler: Arc<dyn ErasedHandler<S>>,
        transactional: bool,
    ) -> Self {
        self.routes.insert(
            event_type,
            Route {
                handler,
                transactional,
            },
        );
        self
    }

    /// Publishes handlers' follow-up events with `publisher`.
    pub fn with_publisher(self, publisher: Publisher) -> Self {
        self.with_event_sink(Arc::new(publisher))
    }

    /// Sends handlers' follow-up events to `sink` (an adapter of the [`EventSink`] port).
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// Declares that no handler emits follow-up events, so the consumer needs no event sink
    /// ([`Consumer::ready`] otherwise asks for one). A handler that emits one anyway fails its
    /// record as misconfigured.
    pub fn emits_no_events(mut self) -> Self {
        self.emits_no_events = true;
        self
    }

    /// Sets permanent failures aside in `sink` and delays retries through it (an adapter of
    /// the [`DeadLetterSink`] port).
    pub fn with_dead_letter_sink(mut self, sink: Arc<dyn DeadLetterSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// Checks that every registered route has the ports it needs, so a wiring mistake stops
    /// the function at start-up with a message instead of dead-lettering records one by one:
    /// a route registered with `on_transactional` needs an idempotency store, and handlers
    /// need an event sink unless the consumer [`emits_no_events`](Consumer::emits_no_events).
    pub fn ready(self) -> Result<Self, ConsumerConfigError> {
        if self.idempotency.is_none() {
            let mut transactional: Vec<EventType> = self
                .routes
                .iter()
                .filter(|(_, route)| route.transactional)
                .map(|(event_type, _)| *event_type)
                .collect();
            transactional.sort();
            if !transactional.is_empty() {
                return Err(ConsumerConfigError::TransactionalWithoutStore {
                    consumer: self.name.to_string(),
                    event_types: transactional,
                });
            }
        }
        if self.events.is_none() && !self.emits_no_events && !self.routes.is_empty() {
            return Err(ConsumerConfigError::NoEventSink {
                consumer: self.name.to_string(),
            });
        }
        Ok(self)
    }

    /// Gives each invocation's metrics to `sink` (see [`crate::telemetry::metrics`]).
    pub fn with_metrics(mut self, sink: Arc<dyn MetricsSink>) -> Self {
        self.metrics = Some(sink);
        self
    }

    /// Makes every handler idempotent.
    pub fn with_idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Some(idempotency);
        self
    }

    /// Uses `client` to dead-letter permanent failures and delay retries. The DLQ is
    /// `dead_letter_queue` if given, else the one the source queue's redrive policy names.
    pub fn with_sqs(self, client: aws_sdk_sqs::Client, dead_letter_queue: Option<String>) -> Self {
        self.with_dead_letter_sink(Arc::new(SqsActions::new(client, dead_letter_queue)))
    }

    /// Wires the consumer the way every orderflow function runs: DynamoDB idempotency in
    /// `env.idempotency_table`, a publisher to `env.events_topic_arn` (if any), and SQS access
    /// for the DLQ and retry delays, and EMF metrics on standard output if `env.metrics` names a
    /// namespace. Clients are built once, here, from `sdk`.
    pub fn wired(self, sdk: &aws_config::SdkConfig, env: &ConsumerEnv) -> Self {
        let consumer = self.wired_without_publisher(sdk, env);
        match &env.events_topic_arn {
            Some(topic) => consumer
                .with_publisher(Publisher::new(aws_sdk_sns::Client::new(sdk), topic.clone())),
            None => consumer,
        }
    }

    /// [`wired`](Consumer::wired) without the publisher, for a consumer that
    /// [`emits_no_events`](Consumer::emits_no_events) (or writes them to an outbox): its binary
    /// then holds no SNS client at all (smaller: `make bench`'s size column).
    pub fn wired_without_publisher(self, sdk: &aws_config::SdkConfig, env: &ConsumerEnv) -> Self {
        let store = crate::idempotency::DynamoIdempotencyStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            env.idempotency_table.clone(),
        );
        let mut consumer = self
            .with_idempotency(Idempotency::new(Arc::new(store)).with_cache(CACHE_CAPACITY))
            .with_sqs(
                aws_sdk_sqs::Client::new(sdk),
                env.dead_letter_queue_url.clone(),
            );
        if let Some(metrics) = EmfMetrics::stdout(&env.metrics, &consumer.name) {
            consumer = consumer.with_metrics(Arc::new(metrics));
        }
        consumer
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: ConsumerOptions) -> Self {
        self.options = options;
        self
    }

    /// The event types this consumer has handlers for, sorted: exactly what its subscription's
    /// filter policy must let through.
    pub fn handled_event_types(&self) -> Vec<EventType> {
        let mut types: Vec<EventType> = self.routes.keys().copied().collect();
        types.sort();
        types
    }

    /// The shared state handlers receive.
    pub fn state(&self) -> Arc<S> {
        self.state.clone()
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Processes a batch and returns the partial batch response, or an error when every
    /// record failed (if so configured); the invocation's metrics go to the metrics sink.
    pub async fn handle(
        &self,
        event: SqsEvent,
        invocation: Invocation,
    ) -> Result<SqsBatchResponse, BatchError> {
        let outcome = self.process(&event, &invocation).await;
        if let Some(metrics) = &self.metrics {
            metrics.record(&InvocationMetrics::of(&outcome, &invocation));
        }
        if self.options.fail_when_all_fail && outcome.all_failed() {
            let first = outcome
                .records
                .first()
                .map(|(_, o)| format!("{o:?}"))
                .unwrap_or_default();
            return Err(BatchError::AllFailed {
                count: outcome.records.len(),
                first,
            });
        }
        Ok(outcome.response())
    }

    /// Processes a batch and returns every record's outcome, in batch order.
    pub async fn process(&self, event: &SqsEvent, invocation: &Invocation) -> BatchOutcome {
        let records = &event.records;
        let fifo = records.iter().any(|r| {
            r.event_source_arn
                .as_deref()
                .is_some_and(|a| a.ends_with(".fifo"))
        });
        // Futures are made by named async fns, not closures over borrowed records: rustc
        // cannot prove a closure-built stream `Send`, and the batch future must be spawnable.
        let mut outcomes: Vec<(usize, RecordOutcome, RecordStats)> = if fifo {
            self.process_fifo(records, invocation).await
        } else {
            let futures: Vec<_> = records
                .iter()
                .enumerate()
                .map(|(i, record)| self.process_indexed(i, record, invocation))
                .collect();
            stream::iter(futures)
                .buffer_unordered(self.options.max_concurrency.max(1))
                .collect()
                .await
        };
        outcomes.sort_by_key(|(i, _, _)| *i);
        let mut outcome = BatchOutcome::default();
        for (i, record_outcome, stats) in outcomes {
            let message_id = records[i].message_id.clone().unwrap_or_default();
            outcome.records.push((message_id, record_outcome));
            outcome.stats.push(stats);
        }
        let failed = outcome
            .records
            .iter()
            .filter(|(_, o)| o.is_failure())
            .count();
        // With a metrics sink the invocation's EMF document says the same (service, records,
        // failures, request and trace ids) in a line CloudWatch Logs bills anyway: this one
        // would be the second line an invocation pays for to say it.
        if self.metrics.is_some() {
            debug!(consumer = %self.name, records = records.len(), failed, "batch processed");
        } else {
            info!(consumer = %self.name, records = records.len(), failed, "batch processed");
        }
        outcome
    }

    /// FIFO: groups in parallel, each group's records in order, stopping at a failure.
    async fn process_fifo(
        &self,
        records: &[SqsMessage],
        invocation: &Invocation,
    ) -> Vec<(usize, RecordOutcome, RecordStats)> {
        let mut groups: BTreeMap<&str, Vec<(usize, &SqsMessage)>> = BTreeMap::new();
        for (i, record) in records.iter().enumerate() {
            let group = record
                .attributes
                .get("MessageGroupId")
                .map(String::as_str)
                .unwrap_or("");
            groups.entry(group).or_default().push((i, record));
        }
        let futures: Vec<_> = groups
            .into_values()
            .map(|group| self.process_group(group, invocation))
            .collect();
        let per_group: Vec<Vec<(usize, RecordOutcome, RecordStats)>> = stream::iter(futures)
            .buffer_unordered(self.options.max_concurrency.max(1))
            .collect()
            .await;
        per_group.into_iter().flatten().collect()
    }

    /// One FIFO group, in order; after a failure the rest is not attempted.
    async fn process_group(
        &self,
        group: Vec<(usize, &SqsMessage)>,
        invocation: &Invocation,
    ) -> Vec<(usize, RecordOutcome, RecordStats)> {
        let mut outcomes = Vec::with_capacity(group.len());
        let mut blocked = false;
        for (i, record) in group {
            if blocked {
                let outcome = RecordOutcome::NotAttempted("an earlier message of its group failed");
                record::log_done(&record::span_for(record), &outcome, Duration::ZERO);
                outcomes.push((i, outcome, RecordStats::default()));
                continue;
            }
            let (outcome, stats) = self.process_guarded(record, invocation).await;
            blocked = outcome.is_failure();
            outcomes.push((i, outcome, stats));
        }
        outcomes
    }

    async fn process_indexed(
        &self,
        i: usize,
        record: &SqsMessage,
        invocation: &Invocation,
    ) -> (usize, RecordOutcome, RecordStats) {
        let (outcome, stats) = self.process_guarded(record, invocation).await;
        (i, outcome, stats)
    }

    /// One record, unless the deadline is too close to start it, and never past the deadline
    /// margin: a record still running then (a call that hangs) is reported failed, so the batch
    /// answers in time and the records that did finish are not delivered again.
    async fn process_guarded(
        &self,
        record: &SqsMessage,
        invocation: &Invocation,
    ) -> (RecordOutcome, RecordStats) {
        let span = record::span_for(record);
        let started = Instant::now();
        let mut stats = RecordStats::default();
        let outcome = self
            .process_in_time(record, invocation, &mut stats)
            .instrument(span.clone())
            .await;
        stats.duration = started.elapsed();
        record::log_done(&span, &outcome, stats.duration);
        (outcome, stats)
    }

    async fn process_in_time(
        &self,
        record: &SqsMessage,
        invocation: &Invocation,
        stats: &mut RecordStats,
    ) -> RecordOutcome {
        let Some(left) = invocation.remaining() else {
            return self.process_caught(record, invocation, stats).await;
        };
        let Some(budget) = left.checked_sub(self.options.deadline_margin) else {
            warn!("deadline too close; returning the record unprocessed");
            return RecordOutcome::NotAttempted(
                "the invocation's deadline was too close to start it",
            );
        };
        match tokio::time::timeout(budget, self.process_caught(record, invocation, stats)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                warn!("the record did not finish before the deadline; returning it for a retry");
                RecordOutcome::Failed(RecordError::DeadlineExceeded)
            }
        }
    }

    /// One record; a panic even in the DLQ hand-off fails it alone.
    async fn process_caught(
        &self,
        record: &SqsMessage,
        invocation: &Invocation,
        stats: &mut RecordStats,
    ) -> RecordOutcome {
        use futures::FutureExt;
        std::panic::AssertUnwindSafe(self.process_record(record, invocation, stats))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                RecordOutcome::Failed(RecordError::Panic(record::panic_message(&*panic)))
            })
    }
}

#[cfg(test)]
mod tests;
