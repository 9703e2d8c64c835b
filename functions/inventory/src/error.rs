//! What can go wrong in the inventory service, and whether a retry can help.

use orderflow::Classify;
use orderflow::aws::AwsError;

/// Why an inventory step failed.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A DynamoDB request failed (classified by the library).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// An item of the inventory table is not what the service stores.
    #[error("inventory table item {key}: {reason}")]
    Unreadable {
        /// The item's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl InventoryError {
    pub(crate) fn unreadable(key: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        InventoryError::Unreadable {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

impl Classify for InventoryError {
    fn is_retryable(&self) -> bool {
        match self {
            InventoryError::Aws(err) => err.is_retryable(),
            InventoryError::Unreadable { .. } => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            InventoryError::Aws(err) => err.kind(),
            InventoryError::Unreadable { .. } => "InventoryItemUnreadable",
        }
    }
}
