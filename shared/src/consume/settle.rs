//! The outcome policy: what a record's result means for SQS. Success is acknowledged; a
//! permanent failure is set aside in the dead-letter sink and acknowledged (a poison message
//! costs one attempt); a transient one is reported failed and delayed with backoff.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::Utc;
use tracing::{error, warn};

use super::{Consumer, RecordError, RecordMeta, RecordOutcome};

/// What a record's success was.
pub(super) enum Processed {
    Handled,
    Duplicate,
    Ignored(crate::event::EventType),
}

impl<S: Send + Sync + 'static> Consumer<S> {
    /// Acknowledged, dead-lettered, or retried later.
    pub(super) async fn settle(
        &self,
        record: &SqsMessage,
        meta: &RecordMeta,
        result: Result<Processed, RecordError>,
    ) -> RecordOutcome {
        match result {
            Ok(Processed::Handled) => RecordOutcome::Handled,
            Ok(Processed::Duplicate) => RecordOutcome::Duplicate,
            Ok(Processed::Ignored(event_type)) => RecordOutcome::Ignored(event_type),
            Err(err) if err.is_retryable() => {
                let delay = self.retry_delay(&err, meta.receive_count);
                warn!(error = %err, kind = err.kind(), retry_in_s = delay.as_secs(), "record failed; will retry");
                if let Some(dead_letters) = &self.dead_letters {
                    dead_letters.delay_retry(record, meta, delay).await;
                }
                RecordOutcome::Failed(err)
            }
            Err(err) => {
                let Some(dead_letters) = &self.dead_letters else {
                    error!(error = %err, kind = err.kind(), "permanent failure and no dead-letter sink; reporting it failed");
                    return RecordOutcome::Failed(err);
                };
                match dead_letters
                    .dead_letter(record, meta, &self.name, &err)
                    .await
                {
                    Ok(()) => {
                        error!(error = %err, kind = err.kind(), "permanent failure; sent to the DLQ");
                        RecordOutcome::DeadLettered(err)
                    }
                    Err(dlq_error) => {
                        error!(error = %err, kind = err.kind(), %dlq_error, "permanent failure, and the DLQ send failed; reporting it failed");
                        RecordOutcome::Failed(err)
                    }
                }
            }
        }
    }

    /// How long a transiently failed record stays invisible: the backoff for its receive
    /// count, and for a duplicate in progress at least until the other invocation's hold lapses.
    fn retry_delay(&self, err: &RecordError, receive_count: u32) -> Duration {
        let backoff = self.options.visibility_backoff;
        let delay = backoff.delay(receive_count);
        match err {
            RecordError::InProgress {
                until_ms: Some(until),
                ..
            } => {
                let left_ms = until.saturating_sub(Utc::now().timestamp_millis()).max(0) as u64;
                let wait = Duration::from_secs(left_ms / 1000 + 1);
                delay.max(wait).min(backoff.max.max(delay))
            }
            // What was missing is about to arrive: the first retry comes sooner, later ones
            // back off as usual, so a cause that never comes waits as long in all.
            RecordError::Handler {
                first_retry_after: Some(soon),
                ..
            } if receive_count <= 1 => (*soon).clamp(Duration::from_secs(1), delay),
            _ => delay,
        }
    }
}
