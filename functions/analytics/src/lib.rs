//! The analytics service: per-day and per-SKU counters and revenue, kept with atomic ADD
//! updates committed in ONE transaction with the idempotency record, so each event counts
//! exactly once.
//!
//! Table (partition key `pk`), each counter split over [`counters::SHARDS`] items
//! `<counter>#<shard>`: `DAY#<date>` (`ordersPlaced`, `ordersConfirmed`, `ordersCancelled`),
//! `REVENUE#<date>#<currency>` (`placed`, `confirmed`), `SKU#<sku>` (`units`, `orderLines`,
//! `revenue<currency>`). Read a counter by adding its shards up ([`counters::sum_shards`]).

pub mod counters;
pub mod error;

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use orderflow::consume::{Consumer, ConsumerEnv, HandlerError, Message, Outcome};
use orderflow::env::{EnvError, FromVars, Vars};
use orderflow::event::{EventData, OrderCancelled, OrderConfirmed, OrderPlaced};
use orderflow::idempotency::Write;

pub use counters::{CounterUpdate, SHARDS, counter_key, shard, sum_shards, updates};
pub use error::AnalyticsError;

/// The consumer's name: idempotency key prefix.
pub const NAME: &str = "analytics";

/// The function's configuration, from the environment the template sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Idempotency and DLQ.
    pub consumer: ConsumerEnv,
    /// `ANALYTICS_TABLE`.
    pub analytics_table: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Self, EnvError> {
        Ok(Config {
            consumer: ConsumerEnv::from_vars(vars)?,
            analytics_table: vars.required("ANALYTICS_TABLE")?,
        })
    }
}

/// What the handlers share.
pub struct State {
    /// The analytics table.
    pub table: String,
}

/// The consumer as the Lambda runs it.
pub fn consumer(sdk: &aws_config::SdkConfig, config: Config) -> Consumer<State> {
    handlers(State {
        table: config.analytics_table,
    })
    .wired(sdk, &config.consumer)
}

/// The handlers, unwired: one transactional handler for each counted event type.
pub fn handlers(state: State) -> Consumer<State> {
    Consumer::new(NAME, state)
        .on_transactional(count::<OrderPlaced>)
        .on_transactional(count::<OrderConfirmed>)
        .on_transactional(count::<OrderCancelled>)
        .emits_no_events()
}

/// Turns a counter update into `ADD a :a, b :b` on its item.
pub fn write(table: &str, update: &CounterUpdate) -> Result<Write, AnalyticsError> {
    let mut builder = Update::builder()
        .table_name(table)
        .key("pk", AttributeValue::S(update.key.clone()));
    let mut clauses = Vec::with_capacity(update.add.len());
    for (i, (attribute, amount)) in update.add.iter().enumerate() {
        clauses.push(format!("#a{i} :v{i}"));
        builder = builder
            .expression_attribute_names(format!("#a{i}"), attribute)
            .expression_attribute_values(
                format!(":v{i}"),
                AttributeValue::N(amount.normalize().to_string()),
            );
    }
    let update = builder
        .update_expression(format!("ADD {}", clauses.join(", ")))
        .build()
        .map_err(|err| AnalyticsError::Unbuildable {
            key: update.key.clone(),
            reason: err.to_string(),
        })?;
    Ok(Write::dynamodb(
        TransactWriteItem::builder().update(update).build(),
    ))
}

/// Any counted event: its counter updates, as writes.
pub async fn count<T: EventData>(
    message: Message<T>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    updates(&message.event)
        .iter()
        .try_fold(Outcome::done(), |outcome, update| {
            Ok(outcome.write(write(&state.table, update)?))
        })
}
