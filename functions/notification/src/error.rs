//! What can go wrong in the notification service, and whether a retry can help.

use orderflow::Classify;
use orderflow::aws::AwsError;

/// Why a notification step failed.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// A DynamoDB request failed (classified by the library).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A confirmation or cancellation arrived before the order's `OrderPlaced` (standard
    /// queues keep no order): it waits and comes back, past the queue's receive budget if need
    /// be (`ConsumerOptions::max_wait_for_cause`).
    #[error("no contact for order {0} yet: its OrderPlaced has not arrived")]
    ContactNotYetKnown(String),
}

impl Classify for NotificationError {
    fn is_retryable(&self) -> bool {
        match self {
            NotificationError::Aws(err) => err.is_retryable(),
            NotificationError::ContactNotYetKnown(_) => true,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            NotificationError::Aws(err) => err.kind(),
            NotificationError::ContactNotYetKnown(_) => "ContactNotYetKnown",
        }
    }

    /// It waits for the order's `OrderPlaced` (see the orders service's `NotYetKnown`).
    fn waits_for_cause(&self) -> bool {
        matches!(self, NotificationError::ContactNotYetKnown(_))
    }
}
