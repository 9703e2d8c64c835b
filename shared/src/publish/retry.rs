//! When to retry a publish, and how long to wait.

use std::time::Duration;

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use backon::{BackoffBuilder, ExponentialBuilder};

/// Exponential backoff with jitter between attempts, on top of the SDK's own retries.
///
/// The SDK already retries a whole request that is throttled or fails; this policy also covers
/// what the SDK cannot see: single PublishBatch entries that SNS failed while the request as a
/// whole succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per message, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// The first delay (before jitter).
    pub min_delay: Duration,
    /// No delay grows beyond this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delays to wait before the 2nd, 3rd, … attempt.
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build()
    }
}

/// Whether a failed PublishBatch entry may succeed if sent again: SNS's own fault, or a
/// throttling or internal-error code even when SNS blames the sender.
pub(crate) fn entry_is_retryable(code: &str, sender_fault: bool) -> bool {
    !sender_fault || crate::aws::is_transient_code(code)
}

/// A failed request, reduced to what the publisher reports.
#[derive(Clone)]
pub(crate) struct RequestFailure {
    pub(crate) code: Option<String>,
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

/// Classifies an SDK error: network failures, timeouts, 5xx and throttling are retryable.
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> RequestFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    RequestFailure {
        code: err.code().map(str::to_owned),
        message: crate::aws::error_chain(err),
        retryable: crate::aws::is_transient(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_bounded_and_counted() {
        let policy = RetryPolicy {
            max_attempts: 4,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        };
        let delays: Vec<_> = policy.delays().collect();
        assert_eq!(delays.len(), 3);
        // Jitter adds up to one more delay on top of the exponential step.
        assert!(
            delays.iter().all(|d| *d <= Duration::from_millis(100)),
            "{delays:?}"
        );
        assert_eq!(
            RetryPolicy {
                max_attempts: 1,
                ..policy
            }
            .delays()
            .count(),
            0
        );
    }

    #[test]
    fn sender_faults_are_final_unless_throttling() {
        assert!(!entry_is_retryable("InvalidParameter", true));
        assert!(entry_is_retryable("InternalError", false));
        assert!(entry_is_retryable("KMSThrottling", true));
    }
}
