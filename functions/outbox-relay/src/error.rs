//! What can go wrong in the relay, and whether a retry can help.

use orderflow::Classify;
use orderflow::aws::AwsError;

/// Why a relay step failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A DynamoDB or SQS request failed (classified by the library).
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Classify for RelayError {
    fn is_retryable(&self) -> bool {
        match self {
            RelayError::Aws(err) => err.is_retryable(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            RelayError::Aws(err) => err.kind(),
        }
    }
}
