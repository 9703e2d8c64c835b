//! How long a transiently failed message stays invisible before its next attempt.

use std::time::Duration;

/// Exponential backoff with full jitter on `ApproximateReceiveCount`, applied with
/// ChangeMessageVisibility, so retries of a struggling dependency spread out instead of all
/// coming back after the queue's fixed visibility timeout.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct VisibilityBackoff {
    /// The ceiling of the first retry's delay.
    pub base: Duration,
    /// No delay exceeds this (SQS allows up to 12 hours).
    pub max: Duration,
}

impl Default for VisibilityBackoff {
    fn default() -> Self {
        // 20 s doubling: with the default maxReceiveCount of 5 a failing message is retried
        // over about 5 minutes on average (at most about 10) before it reaches the DLQ, long
        // enough to ride out a throttled or briefly unavailable dependency.
        VisibilityBackoff {
            base: Duration::from_secs(20),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl VisibilityBackoff {
    /// The ceiling for the delay after the `receive_count`-th delivery: base × 2^(n−1), capped.
    pub fn ceiling(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(30);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(self.max)
            .min(Duration::from_secs(43_200))
    }

    /// A delay drawn uniformly from zero to [`VisibilityBackoff::ceiling`] ("full jitter").
    pub fn delay(&self, receive_count: u32) -> Duration {
        let ceiling = self.ceiling(receive_count).as_secs();
        Duration::from_secs(fastrand::u64(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_per_delivery_up_to_the_max() {
        let backoff = VisibilityBackoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        let ceilings: Vec<u64> = (1..=7).map(|n| backoff.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff.ceiling(0).as_secs(), 2);
        assert_eq!(backoff.ceiling(u32::MAX).as_secs(), 60);
    }

    #[test]
    fn delays_stay_within_the_ceiling_and_vary() {
        let backoff = VisibilityBackoff::default();
        let delays: Vec<u64> = (0..200).map(|_| backoff.delay(5).as_secs()).collect();
        assert!(delays.iter().all(|d| *d <= 320));
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "jitter spreads the delays"
        );
    }
}
