//! How long a transiently failed message stays invisible before its next attempt.

use std::time::Duration;

/// Exponential backoff with "equal jitter" on `ApproximateReceiveCount`, applied with
/// ChangeMessageVisibility, so retries of a struggling dependency spread out instead of all
/// coming back after the queue's fixed visibility timeout.
///
/// The delay after the n-th receive is drawn uniformly from [ceiling / 2, ceiling] whole
/// seconds, ceiling = base × 2^(n−1) capped at `max`, and is never under one second: a zero
/// delay would bring a failing message straight back to the same failure.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct VisibilityBackoff {
    /// The ceiling of the first retry's delay.
    pub base: Duration,
    /// No delay exceeds this (SQS allows up to 12 hours).
    pub max: Duration,
}

impl Default for VisibilityBackoff {
    fn default() -> Self {
        // 20 s doubling: with the default maxReceiveCount of 5 a failing message is tried 5
        // times over 2.5 to 5 minutes (see `total_wait` and README), long enough to ride out a
        // throttled or briefly unavailable dependency.
        VisibilityBackoff {
            base: Duration::from_secs(20),
            max: Duration::from_secs(15 * 60),
        }
    }
}

/// SQS's longest visibility timeout.
const SQS_MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

/// How long a message that fails every time waits in all before SQS moves it to the DLQ.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct TotalWait {
    /// The shortest it can be.
    pub min: Duration,
    /// On average.
    pub mean: Duration,
    /// The longest it can be.
    pub max: Duration,
}

impl VisibilityBackoff {
    /// The ceiling for the delay after the `receive_count`-th delivery: base × 2^(n−1), capped,
    /// and at least one second.
    pub fn ceiling(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(30);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(self.max)
            .min(SQS_MAX_VISIBILITY)
            .max(Duration::from_secs(1))
    }

    /// The shortest delay after the `receive_count`-th delivery: half the ceiling, at least 1 s.
    pub fn floor(&self, receive_count: u32) -> Duration {
        (self.ceiling(receive_count) / 2).max(Duration::from_secs(1))
    }

    /// A delay drawn uniformly from [`VisibilityBackoff::floor`] to
    /// [`VisibilityBackoff::ceiling`], in whole seconds.
    pub fn delay(&self, receive_count: u32) -> Duration {
        let floor = self.floor(receive_count).as_secs();
        let ceiling = self.ceiling(receive_count).as_secs().max(floor);
        Duration::from_secs(fastrand::u64(floor..=ceiling))
    }

    /// The total wait of a message that fails on each of its `max_receive_count` receives:
    /// it waits out one delay after each receive but the last, where the consumer sets it
    /// aside in the DLQ itself (waiting once more would only bring it back to the redrive
    /// policy, which moves it without a reason).
    pub fn total_wait(&self, max_receive_count: u32) -> TotalWait {
        let (mut min, mut mean_ms, mut max) = (0u64, 0u64, 0u64);
        for n in 1..max_receive_count {
            let floor = self.floor(n).as_secs();
            let ceiling = self.ceiling(n).as_secs().max(floor);
            min += floor;
            max += ceiling;
            mean_ms += (floor + ceiling) * 500;
        }
        TotalWait {
            min: Duration::from_secs(min),
            mean: Duration::from_millis(mean_ms),
            max: Duration::from_secs(max),
        }
    }
}

/// "7 min 45 s": how README writes a duration.
#[cfg(test)]
fn minutes_and_seconds(duration: Duration) -> String {
    let secs = duration.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
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
    fn delays_stay_between_half_the_ceiling_and_the_ceiling_and_vary() {
        let backoff = VisibilityBackoff::default();
        let delays: Vec<u64> = (0..200).map(|_| backoff.delay(5).as_secs()).collect();
        assert!(delays.iter().all(|d| (160..=320).contains(d)), "{delays:?}");
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "jitter spreads the delays"
        );
    }

    #[test]
    fn a_delay_is_never_zero() {
        let tiny = VisibilityBackoff {
            base: Duration::ZERO,
            max: Duration::from_millis(10),
        };
        for n in 0..5 {
            assert!(tiny.delay(n) >= Duration::from_secs(1));
            assert!(VisibilityBackoff::default().delay(n) >= Duration::from_secs(1));
        }
    }

    #[test]
    fn readme_states_the_total_wait_before_the_dlq_for_the_default_max_receive_count() {
        // The template's MaxReceiveCount default.
        let wait = VisibilityBackoff::default().total_wait(5);
        assert_eq!(
            (wait.min.as_secs(), wait.mean.as_secs(), wait.max.as_secs()),
            (150, 225, 300)
        );
        let readme = include_str!("../../../README.md");
        let sentence = format!(
            "is set aside in the DLQ after {} on average ({} at least, {} at most)",
            minutes_and_seconds(wait.mean),
            minutes_and_seconds(wait.min),
            minutes_and_seconds(wait.max)
        );
        assert!(readme.contains(&sentence), "README must say: {sentence}");
        let template = include_str!("../../../infra/template.yaml");
        assert!(
            template.contains("  MaxReceiveCount:\n    Type: Number\n    Default: 5\n"),
            "the template's default MaxReceiveCount is the 5 this test assumes"
        );
    }
}
