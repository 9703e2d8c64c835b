//! The outcome policy: what a record's result means for SQS. Success is acknowledged; a
//! permanent failure is set aside in the dead-letter sink and acknowledged (a poison message
//! costs one attempt); a transient one is reported failed and delayed with backoff. Near the
//! queue's last receive, one waiting for its cause is sent back to wait longer, and at the last
//! receive any other is set aside with its reason.

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
            Err(err) if err.is_retryable() => self.retry(record, meta, err).await,
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

    /// A transient failure: back later with backoff, while the queue's receive budget lasts.
    ///
    /// At the last receive the redrive policy would move the record to the DLQ at its next
    /// receive, without a reason, and after a delay that can no longer help. So the consumer
    /// settles it itself: a record waiting for another message (its cause, another
    /// invocation's hold) is sent back to its queue as a copy that waits on, up to
    /// [`ConsumerOptions::max_wait_for_cause`](super::ConsumerOptions::max_wait_for_cause), one
    /// receive before the last; anything else, or a wait past that limit, goes to the DLQ at
    /// the last receive with its reason. If that hand-off fails, the record is reported failed
    /// and the redrive policy still has it.
    async fn retry(
        &self,
        record: &SqsMessage,
        meta: &RecordMeta,
        err: RecordError,
    ) -> RecordOutcome {
        let delay = self.retry_delay(&err, meta.receives());
        let Some(dead_letters) = &self.dead_letters else {
            warn!(error = %err, kind = err.kind(), "record failed; will retry");
            return RecordOutcome::Failed(err);
        };
        let max_receive_count = dead_letters.max_receive_count(meta).await;
        let now = Utc::now();
        let waiting_since = meta.waiting_since.or(meta.sent_at).unwrap_or(now);
        let waited = (now - waiting_since).to_std().unwrap_or_default();
        // A record waiting for another message leaves one receive early: a crash of its batch,
        // or a receive lost on its way to the function, would otherwise spend the last one,
        // and SQS would move it to the DLQ without a reason.
        let may_wait_on = err.waits_for_another_message()
            // A FIFO group keeps its order: a copy would jump behind later messages.
            && meta.group_id.is_none()
            && max_receive_count.is_some_and(|max| meta.receive_count >= max.saturating_sub(1).max(1))
            && waited + delay <= self.options.max_wait_for_cause;
        if may_wait_on {
            match dead_letters
                .send_back(record, meta, delay, waiting_since)
                .await
            {
                Ok(()) => {
                    warn!(error = %err, kind = err.kind(), waited_s = waited.as_secs(), retry_in_s = delay.as_secs(), "record failed near its last receive and waits for another message; sent back to its queue");
                    return RecordOutcome::SentBack(err);
                }
                Err(send_error) => {
                    error!(error = %err, kind = err.kind(), %send_error, "record failed near its last receive and could not be sent back to its queue");
                }
            }
        }
        let last_receive = max_receive_count.is_some_and(|max| meta.receive_count >= max);
        if !last_receive {
            warn!(error = %err, kind = err.kind(), retry_in_s = delay.as_secs(), "record failed; will retry");
            dead_letters.delay_retry(record, meta, delay).await;
            return RecordOutcome::Failed(err);
        }
        match dead_letters
            .dead_letter(record, meta, &self.name, &err)
            .await
        {
            Ok(()) => {
                error!(error = %err, kind = err.kind(), waited_s = waited.as_secs(), "record failed at its last receive; sent to the DLQ");
                RecordOutcome::DeadLettered(err)
            }
            Err(dlq_error) => {
                error!(error = %err, kind = err.kind(), %dlq_error, "record failed at its last receive, and the DLQ send failed; the redrive policy will move it");
                RecordOutcome::Failed(err)
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
