//! Where the counters are kept: the port the handlers speak to, and its DynamoDB adapter.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use orderflow::idempotency::Write;

use crate::counters::CounterUpdate;
use crate::error::AnalyticsError;

/// Keeps the counters. A counter update becomes a [`Write`] the consumer commits in one
/// transaction with the event's idempotency record, so each event counts exactly once.
pub trait CounterStore: Send + Sync {
    /// The write that adds `update`'s amounts to its item.
    fn add(&self, update: &CounterUpdate) -> Result<Write, AnalyticsError>;
}

/// The analytics table in DynamoDB (partition key `pk`).
#[derive(Clone, Debug)]
pub struct DynamoCounterStore {
    table: String,
}

impl DynamoCounterStore {
    /// The counters in `table`.
    pub fn new(table: impl Into<String>) -> Self {
        DynamoCounterStore {
            table: table.into(),
        }
    }
}

impl CounterStore for DynamoCounterStore {
    /// `ADD a :a, b :b` on the update's item.
    fn add(&self, update: &CounterUpdate) -> Result<Write, AnalyticsError> {
        let mut builder = Update::builder()
            .table_name(&self.table)
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
        let built = builder
            .update_expression(format!("ADD {}", clauses.join(", ")))
            .build()
            .map_err(|err| AnalyticsError::Unbuildable {
                key: update.key.clone(),
                reason: err.to_string(),
            })?;
        Ok(Write::dynamodb(
            TransactWriteItem::builder().update(built).build(),
        ))
    }
}
