//! Why an idempotency operation failed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// One business write of a transaction that DynamoDB refused.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteRefused {
    /// Position of the write in the handler's `writes` (the idempotency record is not counted).
    pub index: usize,
    /// DynamoDB's cancellation code, e.g. `ConditionalCheckFailed`.
    pub code: String,
    /// DynamoDB's message, if any.
    pub message: Option<String>,
    /// The item as it was, when the write asked for `ALL_OLD` on condition failure.
    pub item: Option<HashMap<String, AttributeValue>>,
}

/// A transaction whose business condition failed: nothing was written, the idempotency record
/// included, so a retry runs the handler again on fresh data.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("the transaction was cancelled: {}", describe(.refused))]
pub struct TransactionConflict {
    /// Every write DynamoDB named as a cause.
    pub refused: Vec<WriteRefused>,
}

fn describe(refused: &[WriteRefused]) -> String {
    refused
        .iter()
        .map(|w| format!("write {} {}", w.index, w.code))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why the idempotency store could not answer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum IdempotencyError {
    /// The key was first used with a different payload: the same event id carries other data.
    #[error("idempotency key `{key}` was already used with a different payload")]
    PayloadMismatch {
        /// The key.
        key: String,
    },
    /// The claim was no longer this invocation's when it tried to complete it: its deadline
    /// passed and another invocation took the key over. Nothing was overwritten.
    #[error(
        "idempotency key `{key}` was taken over by another invocation before this one completed it"
    )]
    ClaimLost {
        /// The key.
        key: String,
    },
    /// A business write's condition failed; nothing was written.
    #[error(transparent)]
    Conflict(#[from] TransactionConflict),
    /// The store's request failed.
    #[error("idempotency store request failed: {message}")]
    Store {
        /// The failure and its causes.
        message: String,
        /// Whether a retry may succeed (throttling, timeouts, 5xx, transaction conflicts).
        retryable: bool,
    },
    /// A stored record cannot be read back.
    #[error("idempotency record `{key}` is unreadable: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// This store cannot commit business writes (only the DynamoDB store can).
    #[error("this idempotency store cannot commit business writes")]
    Unsupported,
}

impl IdempotencyError {
    /// Whether retrying the same message later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            // The data changed under the transaction; a retry decides again on fresh data.
            IdempotencyError::Conflict(_) => true,
            // The other holder finishes; a redelivery then finds its result.
            IdempotencyError::ClaimLost { .. } => true,
            IdempotencyError::Store { retryable, .. } => *retryable,
            IdempotencyError::PayloadMismatch { .. }
            | IdempotencyError::Corrupt { .. }
            | IdempotencyError::Unsupported => false,
        }
    }

    /// A short, stable name for logs, metrics and DLQ attributes.
    pub fn kind(&self) -> &'static str {
        match self {
            IdempotencyError::PayloadMismatch { .. } => "PayloadMismatch",
            IdempotencyError::Conflict(_) => "TransactionConflict",
            IdempotencyError::ClaimLost { .. } => "IdempotencyClaimLost",
            IdempotencyError::Store { .. } => "IdempotencyStore",
            IdempotencyError::Corrupt { .. } => "IdempotencyRecordCorrupt",
            IdempotencyError::Unsupported => "IdempotencyUnsupported",
        }
    }
}
