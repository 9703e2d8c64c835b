//! What can go wrong in the order service, and whether a retry can help.

use orderflow::Classify;
use orderflow::aws::AwsError;

/// Why an order operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// A DynamoDB request failed (classified by the library).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A saga event arrived before the order's `OrderPlaced` reached this service (separate
    /// queues keep no order between them): it waits and comes back.
    #[error("order {0} is not known here yet: its OrderPlaced has not arrived")]
    NotYetKnown(String),
    /// An item of the orders table cannot be read or written as the service stores it.
    #[error("orders table item {key}: {reason}")]
    Unreadable {
        /// The item's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An event for the outbox breaks the contract (a bug: never published).
    #[error("outbox event is invalid: {0}")]
    InvalidEvent(#[from] orderflow::EventError),
}

impl Classify for OrdersError {
    fn is_retryable(&self) -> bool {
        match self {
            OrdersError::Aws(err) => err.is_retryable(),
            OrdersError::NotYetKnown(_) => true,
            OrdersError::Unreadable { .. } | OrdersError::InvalidEvent(_) => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            OrdersError::Aws(err) => err.kind(),
            OrdersError::NotYetKnown(_) => "OrderNotYetKnown",
            OrdersError::Unreadable { .. } => "OrderUnreadable",
            OrdersError::InvalidEvent(_) => "InvalidEvent",
        }
    }

    /// A saga event that overtook its order: the `OrderPlaced` is usually in this very queue,
    /// a batch away, so the first retry comes after 2 s rather than the 10–20 s backoff.
    fn first_retry_after(&self) -> Option<std::time::Duration> {
        matches!(self, OrdersError::NotYetKnown(_)).then_some(std::time::Duration::from_secs(2))
    }

    /// It waits for its `OrderPlaced`, which crashes or throttling can hold back for longer
    /// than this queue's receive budget: the consumer keeps it waiting past that budget.
    fn waits_for_cause(&self) -> bool {
        matches!(self, OrdersError::NotYetKnown(_))
    }
}
