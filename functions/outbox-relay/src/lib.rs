//! The outbox relay function: reads new `OUTBOX#` rows from the orders table's DynamoDB stream,
//! publishes their events to SNS with PublishBatch, and marks them sent.
//!
//! - **Byte for byte.** The stored event JSON is published unchanged, with the message
//!   attributes stored beside it: a field a newer writer added, or a version this relay does
//!   not read, goes out as it was written.
//! - **At least once, never lost.** A row that fails for a transient reason (SNS throttling or
//!   down) is reported by its sequence number, and Lambda retries the stream from there (rows
//!   after it that did go out are published again; their ids are the same, so consumers'
//!   idempotency absorbs them). Each failed attempt is counted on the row.
//! - **Never blocks a shard.** A row that cannot be published (unreadable, rejected by SNS for
//!   good, or failing `max_attempts` times) is sent to the failure queue with its reason, and
//!   the shard moves on. The row stays `PENDING`, to be published again once the cause is
//!   fixed (README, "Reading a DLQ").

//!
//! The relay itself is the library's ([`orderflow::outbox`]); this crate is its configuration
//! and wiring.

use std::sync::Arc;

use orderflow::Publisher;
use orderflow::env::{EnvError, FromVars, Vars};
use orderflow::telemetry::metrics::{EmfMetrics, MetricsConfig};

/// The relay's name: its metrics' `Service` unless `POWERTOOLS_SERVICE_NAME` says otherwise.
pub const NAME: &str = "outbox-relay";

pub use orderflow::outbox::{
    DEFAULT_MAX_ATTEMPTS, DynamoOutboxStore, FailureSink, OutboxRecord, OutboxRow, OutboxStore,
    Relay, SetAside, SqsFailureSink, outbox_record,
};

/// The function's configuration, from the environment the template sets.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Config {
    /// `ORDERS_TABLE`: where the outbox rows are marked sent.
    pub orders_table: String,
    /// `EVENTS_TOPIC_ARN`: where events are published.
    pub events_topic_arn: String,
    /// `FAILURE_QUEUE_URL`: where rows that cannot be published go.
    pub failure_queue_url: String,
    /// `MAX_PUBLISH_ATTEMPTS`: failed attempts before a row is set aside (default 5).
    pub max_attempts: u32,
    /// The `POWERTOOLS_METRICS_*` variables: where each invocation's metrics go.
    pub metrics: MetricsConfig,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Self, EnvError> {
        Ok(Config {
            orders_table: vars.required("ORDERS_TABLE")?,
            events_topic_arn: vars.required(orderflow::env::vars::EVENTS_TOPIC_ARN)?,
            failure_queue_url: vars.required("FAILURE_QUEUE_URL")?,
            max_attempts: vars.parsed("MAX_PUBLISH_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)?,
            metrics: MetricsConfig::from_vars(vars)?,
        })
    }
}

/// The relay as the Lambda runs it (EMF metrics on standard output when the environment names
/// a namespace).
pub fn relay(sdk: &aws_config::SdkConfig, config: Config) -> Relay {
    let relay = Relay::new(
        Publisher::new(aws_sdk_sns::Client::new(sdk), config.events_topic_arn),
        Arc::new(DynamoOutboxStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.orders_table,
        )),
        Arc::new(SqsFailureSink::new(
            aws_sdk_sqs::Client::new(sdk),
            config.failure_queue_url,
        )),
    )
    .with_max_attempts(config.max_attempts);
    match EmfMetrics::stdout(&config.metrics, NAME) {
        Some(metrics) => relay.with_metrics(Arc::new(metrics)),
        None => relay,
    }
}
