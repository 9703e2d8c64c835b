//! What can go wrong in the payment service, and whether a retry can help.

use orderflow::Classify;
use orderflow::aws::AwsError;

/// Why a payment step failed.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// A DynamoDB request failed (classified by the library: throttling and 5xx are transient,
    /// a missing table or a refused request permanent).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The payment gateway could not be reached or answered with an error; try again later.
    #[error("payment gateway unavailable: {0}")]
    GatewayUnavailable(String),
    /// A stored payment does not say what it must (a capture without its payment id).
    #[error("payment of order {order_id} is inconsistent: {reason}")]
    Inconsistent {
        /// The order.
        order_id: String,
        /// What is wrong.
        reason: String,
    },
}

impl Classify for PaymentError {
    fn is_retryable(&self) -> bool {
        match self {
            PaymentError::Aws(err) => err.is_retryable(),
            PaymentError::GatewayUnavailable(_) => true,
            PaymentError::Inconsistent { .. } => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            PaymentError::Aws(err) => err.kind(),
            PaymentError::GatewayUnavailable(_) => "GatewayUnavailable",
            PaymentError::Inconsistent { .. } => "PaymentInconsistent",
        }
    }
}
