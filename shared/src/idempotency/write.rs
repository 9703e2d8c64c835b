//! A write committed in one transaction with an idempotency record (`on_transactional`).
//!
//! Handlers and ports pass writes on without looking inside: only adapters make them, and only
//! the store that commits them takes them apart. A DynamoDB adapter makes DynamoDB writes, which
//! [`DynamoIdempotencyStore`](super::DynamoIdempotencyStore) commits; an in-memory adapter makes
//! in-memory writes (a condition and a change), which
//! [`InMemoryIdempotencyStore`](super::InMemoryIdempotencyStore) commits, so a function's
//! handlers can be tested without an emulator.

use std::fmt;
use std::sync::Arc;

use aws_sdk_dynamodb::types::TransactWriteItem;

/// The condition of an in-memory write: `Err` with the reason when it does not hold.
pub type WriteCondition = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;
/// The change of an in-memory write, applied once every condition of the commit held.
pub type WriteChange = Arc<dyn Fn() + Send + Sync>;

/// One write to commit together with an idempotency record.
#[derive(Clone)]
pub struct Write(Kind);

#[derive(Clone)]
enum Kind {
    DynamoDb(Box<TransactWriteItem>),
    InMemory {
        what: String,
        condition: WriteCondition,
        change: WriteChange,
    },
}

impl Write {
    /// A DynamoDB write (`Put`, `Update`, `Delete` or `ConditionCheck`): for DynamoDB adapters.
    pub fn dynamodb(item: TransactWriteItem) -> Self {
        Write(Kind::DynamoDb(Box::new(item)))
    }

    /// A write to in-memory state, for in-memory adapters: `condition` is checked with every
    /// other condition of the commit, and `change` applied only if they all hold. `what` names
    /// it in errors and comparisons.
    pub fn in_memory(
        what: impl Into<String>,
        condition: WriteCondition,
        change: WriteChange,
    ) -> Self {
        Write(Kind::InMemory {
            what: what.into(),
            condition,
            change,
        })
    }

    /// The DynamoDB write, if this is one.
    pub fn as_dynamodb(&self) -> Option<&TransactWriteItem> {
        match &self.0 {
            Kind::DynamoDb(item) => Some(item),
            Kind::InMemory { .. } => None,
        }
    }

    /// The DynamoDB write, if this is one.
    pub fn into_dynamodb(self) -> Option<TransactWriteItem> {
        match self.0 {
            Kind::DynamoDb(item) => Some(*item),
            Kind::InMemory { .. } => None,
        }
    }

    /// What the write is, for errors.
    pub fn describe(&self) -> String {
        match &self.0 {
            Kind::DynamoDb(item) => format!("{item:?}"),
            Kind::InMemory { what, .. } => what.clone(),
        }
    }

    /// Checks an in-memory write's condition (a DynamoDB write is checked by DynamoDB: `None`).
    pub(crate) fn check_in_memory(&self) -> Option<Result<(), String>> {
        match &self.0 {
            Kind::InMemory { condition, .. } => Some(condition()),
            Kind::DynamoDb(_) => None,
        }
    }

    /// Applies an in-memory write's change.
    pub(crate) fn apply_in_memory(&self) {
        if let Kind::InMemory { change, .. } = &self.0 {
            change();
        }
    }
}

impl From<TransactWriteItem> for Write {
    fn from(item: TransactWriteItem) -> Self {
        Write::dynamodb(item)
    }
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::DynamoDb(item) => f.debug_tuple("DynamoDb").field(item).finish(),
            Kind::InMemory { what, .. } => f.debug_tuple("InMemory").field(what).finish(),
        }
    }
}

impl PartialEq for Write {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Kind::DynamoDb(a), Kind::DynamoDb(b)) => a == b,
            (Kind::InMemory { what: a, .. }, Kind::InMemory { what: b, .. }) => a == b,
            _ => false,
        }
    }
}
