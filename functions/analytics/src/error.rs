//! What can go wrong in the analytics service. Its handlers only compute writes (the library
//! commits them with the idempotency record, and classifies what DynamoDB answers), so the
//! one failure of its own is a write the SDK refuses to build: a bug, not worth a retry.

use orderflow::Classify;

/// Why an analytics step failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// A counter update could not be built.
    #[error("counter update for `{key}` cannot be built: {reason}")]
    Unbuildable {
        /// The counter item.
        key: String,
        /// What the SDK said.
        reason: String,
    },
}

impl Classify for AnalyticsError {
    fn is_retryable(&self) -> bool {
        false
    }

    fn kind(&self) -> &'static str {
        "Misconfigured"
    }
}
