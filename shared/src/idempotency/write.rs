//! A write committed in one transaction with an idempotency record (`on_transactional`).
//!
//! Handlers and ports pass writes on without looking inside: only adapters make them, from the
//! DynamoDB write their table needs, and only the store that commits them takes them apart.

use aws_sdk_dynamodb::types::TransactWriteItem;

/// One write to commit together with an idempotency record.
#[derive(Clone, Debug, PartialEq)]
pub struct Write(TransactWriteItem);

impl Write {
    /// A DynamoDB write (`Put`, `Update`, `Delete` or `ConditionCheck`): for adapters.
    pub fn dynamodb(item: TransactWriteItem) -> Self {
        Write(item)
    }

    /// The DynamoDB write, for the store that commits it.
    pub fn as_dynamodb(&self) -> &TransactWriteItem {
        &self.0
    }

    /// The DynamoDB write, for the store that commits it.
    pub fn into_dynamodb(self) -> TransactWriteItem {
        self.0
    }
}

impl From<TransactWriteItem> for Write {
    fn from(item: TransactWriteItem) -> Self {
        Write(item)
    }
}
