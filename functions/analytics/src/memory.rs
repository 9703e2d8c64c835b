//! The counters in memory: the same port as [`DynamoCounterStore`](crate::DynamoCounterStore),
//! with in-memory writes that
//! [`InMemoryIdempotencyStore`](orderflow::idempotency::InMemoryIdempotencyStore) commits with
//! the idempotency record, all or nothing. For the handlers' unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use orderflow::idempotency::Write;
use rust_decimal::Decimal;

use crate::counters::{CounterUpdate, sum_shards};
use crate::error::AnalyticsError;
use crate::store::CounterStore;

/// Item key → attribute → amount.
type Items = BTreeMap<String, BTreeMap<String, Decimal>>;

/// Counter items in memory.
#[derive(Clone, Debug, Default)]
pub struct InMemoryCounters {
    items: Arc<Mutex<Items>>,
}

impl InMemoryCounters {
    /// No counters yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every counter, its shards added up ([`sum_shards`]), by counter key.
    pub fn totals(&self) -> BTreeMap<String, BTreeMap<String, Decimal>> {
        let items = self.items.lock();
        sum_shards(items.iter().map(|(key, amounts)| {
            (
                key.as_str(),
                amounts.iter().map(|(a, n)| (a.clone(), *n)).collect(),
            )
        }))
    }
}

impl CounterStore for InMemoryCounters {
    fn add(&self, update: &CounterUpdate) -> Result<Write, AnalyticsError> {
        let items = self.items.clone();
        let update = update.clone();
        Ok(Write::in_memory(
            format!("ADD to {}", update.key),
            // ADD creates what is missing: nothing to check.
            Arc::new(|| Ok(())),
            Arc::new(move || {
                let mut items = items.lock();
                let item = items.entry(update.key.clone()).or_default();
                for (attribute, amount) in &update.add {
                    *item.entry(attribute.clone()).or_default() += *amount;
                }
            }),
        ))
    }
}
