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
pub mod memory;
pub mod store;

use std::sync::Arc;

use orderflow::consume::{Consumer, ConsumerEnv, HandlerError, Message, Outcome};
use orderflow::env::{EnvError, FromVars, Vars};
use orderflow::event::{EventData, OrderCancelled, OrderConfirmed, OrderPlaced};

pub use counters::{CounterUpdate, SHARDS, counter_key, shard, sum_shards, updates};
pub use error::AnalyticsError;
pub use memory::InMemoryCounters;
pub use store::{CounterStore, DynamoCounterStore};

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
    /// Where the counters are kept.
    pub counters: Arc<dyn CounterStore>,
}

/// The consumer as the Lambda runs it.
pub fn consumer(sdk: &aws_config::SdkConfig, config: Config) -> Consumer<State> {
    handlers(State {
        counters: Arc::new(DynamoCounterStore::new(config.analytics_table)),
    })
    .wired_without_publisher(sdk, &config.consumer)
}

/// The handlers, unwired: one transactional handler for each counted event type.
pub fn handlers(state: State) -> Consumer<State> {
    Consumer::new(NAME, state)
        .on_transactional(count::<OrderPlaced>)
        .on_transactional(count::<OrderConfirmed>)
        .on_transactional(count::<OrderCancelled>)
        .emits_no_events()
}

/// Any counted event: its counter updates, as writes.
pub async fn count<T: EventData>(
    message: Message<T>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    updates(&message.event)
        .iter()
        .try_fold(Outcome::done(), |outcome, update| {
            Ok(outcome.write(state.counters.add(update)?))
        })
}
