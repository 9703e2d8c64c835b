//! Publishing events to an SNS topic, one at a time or in batches.
//!
//! Every message carries the attributes `eventType` (String), `eventVersion` (Number) and
//! `correlationId` (String), so subscriptions can filter on them. On a FIFO topic (ARN ending
//! in `.fifo`) `MessageGroupId` is the `aggregateId` (one order's events stay in order) and
//! `MessageDeduplicationId` is the `eventId` (SNS drops a re-publish within 5 minutes).
//!
//! Events are validated before anything is sent: an invalid event is never published.

mod entry;
mod error;
mod plan;
mod retry;

use std::collections::{HashMap, HashSet};

use tracing::{debug, warn};
use uuid::Uuid;

pub use entry::{ATTR_CORRELATION_ID, ATTR_EVENT_TYPE, ATTR_EVENT_VERSION, EncodedEvent};
pub use error::PublishError;
pub use plan::{MAX_BATCH_BYTES, MAX_BATCH_ENTRIES};
pub use retry::RetryPolicy;

use crate::event::Event;
use entry::PreparedEntry;
use retry::{RequestFailure, classify, entry_is_retryable};

/// Publishes events to one SNS topic.
///
/// ```no_run
/// # async fn run() -> Result<(), orderflow::PublishError> {
/// let config = orderflow::aws::sdk_config().await;
/// let publisher = orderflow::Publisher::new(
///     aws_sdk_sns::Client::new(&config),
///     "arn:aws:sns:eu-west-1:123456789012:orderflow-events",
/// );
/// let published = publisher.publish(&orderflow::event::examples::order_placed()).await?;
/// println!("SNS message id {}", published.message_id);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Publisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    retry: RetryPolicy,
}

/// One event SNS accepted.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Published {
    /// The event's id.
    pub event_id: Uuid,
    /// SNS's message id.
    pub message_id: String,
    /// FIFO topics only: SNS's sequence number.
    pub sequence_number: Option<String>,
}

/// The outcome of [`Publisher::publish_batch`]: one result per input event, in input order.
#[derive(Debug)]
pub struct BatchReport {
    /// `results[i]` is the outcome of the `i`-th input event.
    pub results: Vec<Result<Published, PublishError>>,
    /// How many PublishBatch requests were sent, retries included.
    pub requests: usize,
}

impl BatchReport {
    /// The events SNS accepted.
    pub fn published(&self) -> impl Iterator<Item = &Published> {
        self.results.iter().filter_map(|r| r.as_ref().ok())
    }

    /// The events that were not published, and why.
    pub fn failures(&self) -> impl Iterator<Item = &PublishError> {
        self.results.iter().filter_map(|r| r.as_ref().err())
    }

    /// Whether every event was published.
    pub fn is_complete(&self) -> bool {
        self.results.iter().all(Result::is_ok)
    }
}

impl Publisher {
    /// A publisher to `topic_arn` with the default [`RetryPolicy`].
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Publisher {
            client,
            topic_arn: topic_arn.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The topic this publisher writes to.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Whether the topic is FIFO (its name ends in `.fifo`, as SNS requires).
    pub fn is_fifo(&self) -> bool {
        self.topic_arn.ends_with(".fifo")
    }

    /// Validates and publishes one event with the Publish API, retrying retryable failures.
    pub async fn publish(&self, event: &Event) -> Result<Published, PublishError> {
        let encoded = EncodedEvent::encode(event).map_err(|source| PublishError::Invalid {
            event_id: event.event_id,
            source,
        })?;
        let entry = PreparedEntry::new(0, &encoded, self.is_fifo())?;
        let mut delays = self.retry.delays();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = self
                .client
                .publish()
                .topic_arn(&self.topic_arn)
                .message(&entry.body)
                .set_message_attributes(Some(entry.message_attributes()))
                .set_message_group_id(entry.group_id.clone())
                .set_message_deduplication_id(entry.dedup_id.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(out) => {
                    return Ok(Published {
                        event_id: event.event_id,
                        message_id: out.message_id().unwrap_or_default().to_owned(),
                        sequence_number: out.sequence_number().map(str::to_owned),
                    });
                }
                Err(err) => classify(&err),
            };
            match delays.next().filter(|_| failure.retryable) {
                Some(delay) => {
                    warn!(outgoing_event_id = %event.event_id, attempts, error = %failure.message, ?delay, "publish failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(request_error(event.event_id, failure, attempts)),
            }
        }
    }

    /// Validates and publishes many events with PublishBatch.
    ///
    /// Invalid events are reported and never sent; the rest go out as
    /// [`Publisher::publish_encoded`] sends them.
    pub async fn publish_batch(&self, events: &[Event]) -> BatchReport {
        let encoded: Vec<Result<EncodedEvent, PublishError>> = events
            .iter()
            .map(|event| {
                EncodedEvent::encode(event).map_err(|source| PublishError::Invalid {
                    event_id: event.event_id,
                    source,
                })
            })
            .collect();
        self.publish_all(encoded).await
    }

    /// Publishes already encoded events with PublishBatch, each body byte for byte.
    ///
    /// They go out in requests of at most [`MAX_BATCH_ENTRIES`] entries and
    /// [`MAX_BATCH_BYTES`] bytes. Entries SNS fails for a retryable reason (throttling, internal
    /// errors, a failed request) are sent again, alone, with exponential backoff and jitter; an
    /// entry SNS accepted is never sent again. On a FIFO topic a request carries one entry per
    /// message group, and once an entry of a group fails, every later entry of that group waits
    /// for its retry, or, if it fails for good, is not sent at all and reported
    /// [`PublishError::HeldBack`]: a group's order holds.
    pub async fn publish_encoded(&self, events: &[EncodedEvent]) -> BatchReport {
        self.publish_all(events.iter().cloned().map(Ok).collect())
            .await
    }

    async fn publish_all(&self, events: Vec<Result<EncodedEvent, PublishError>>) -> BatchReport {
        let fifo = self.is_fifo();
        let mut results: Vec<Option<Result<Published, PublishError>>> = vec![None; events.len()];
        let mut pending = Vec::new();
        for (index, event) in events.iter().enumerate() {
            match event
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|e| PreparedEntry::new(index, e, fifo))
            {
                Ok(entry) => pending.push(entry),
                Err(err) => results[index] = Some(Err(err)),
            }
        }

        // FIFO groups whose entry failed for good in this call: (that entry, was it retryable).
        let mut failed_groups: HashMap<String, (Uuid, bool)> = HashMap::new();
        let mut delays = self.retry.delays();
        let mut requests = 0;
        let mut attempt = 1;
        while !pending.is_empty() {
            let may_retry = attempt < self.retry.max_attempts;
            let mut retry_later = Vec::new();
            // Groups with an entry waiting for a retry in this round.
            let mut stalled_groups = HashSet::new();
            let shape: Vec<(usize, Option<&str>)> = pending
                .iter()
                .map(|e| (e.size(), e.group_id.as_deref()))
                .collect();
            for range in plan::plan_requests(&shape) {
                let mut send = Vec::new();
                for entry in &pending[range] {
                    let group = entry.group_id.as_deref();
                    if let Some(&(behind, retryable)) = group.and_then(|g| failed_groups.get(g)) {
                        results[entry.index] = Some(Err(PublishError::HeldBack {
                            event_id: entry.event_id,
                            behind,
                            retryable,
                        }));
                    } else if group.is_some_and(|g| stalled_groups.contains(g)) {
                        retry_later.push(entry.clone());
                    } else {
                        send.push(entry.clone());
                    }
                }
                if send.is_empty() {
                    continue;
                }
                requests += 1;
                for (entry, outcome) in self.send_batch(&send).await {
                    match outcome {
                        Ok(published) => results[entry.index] = Some(Ok(published)),
                        Err(err) if err.is_retryable() && may_retry => {
                            debug!(outgoing_event_id = %entry.event_id, attempt, error = %err, "batch entry failed; will retry");
                            stalled_groups.extend(entry.group_id.clone());
                            retry_later.push(entry);
                        }
                        Err(err) => {
                            if let Some(group) = &entry.group_id {
                                failed_groups
                                    .insert(group.clone(), (entry.event_id, err.is_retryable()));
                            }
                            results[entry.index] = Some(Err(with_attempts(err, attempt)));
                        }
                    }
                }
            }
            if retry_later.is_empty() {
                break;
            }
            retry_later.sort_by_key(|e| e.index);
            let delay = delays.next().unwrap_or(self.retry.max_delay);
            warn!(
                entries = retry_later.len(),
                attempt,
                ?delay,
                "retrying failed batch entries"
            );
            tokio::time::sleep(delay).await;
            pending = retry_later;
            attempt += 1;
        }

        let results = results
            .into_iter()
            .zip(&events)
            .map(|(result, event)| {
                // Every prepared entry ends with a result; this only guards the invariant.
                result.unwrap_or_else(|| {
                    Err(PublishError::Request {
                        event_id: event.as_ref().map(|e| e.event_id).unwrap_or_default(),
                        message: "no outcome was recorded".to_owned(),
                        retryable: true,
                        attempts: attempt,
                    })
                })
            })
            .collect();
        BatchReport { results, requests }
    }

    /// Sends one PublishBatch request; returns each entry with its outcome.
    async fn send_batch(
        &self,
        entries: &[PreparedEntry],
    ) -> Vec<(PreparedEntry, Result<Published, PublishError>)> {
        let mut request_entries = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry.batch_entry() {
                Ok(e) => request_entries.push(e),
                Err(message) => {
                    let failure = RequestFailure {
                        code: None,
                        message,
                        retryable: false,
                    };
                    return fail_all(entries, &failure);
                }
            }
        }
        let sent = self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(request_entries))
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(err) => {
                let failure = classify(&err);
                warn!(entries = entries.len(), error = %failure.message, retryable = failure.retryable, "PublishBatch request failed");
                return fail_all(entries, &failure);
            }
        };
        let succeeded: HashMap<&str, _> = output
            .successful()
            .iter()
            .filter_map(|s| Some((s.id()?, s)))
            .collect();
        let failed: HashMap<&str, _> = output.failed().iter().map(|f| (f.id(), f)).collect();
        entries
            .iter()
            .map(|entry| {
                let id = entry.batch_id();
                let outcome = if let Some(ok) = succeeded.get(id.as_str()) {
                    Ok(Published {
                        event_id: entry.event_id,
                        message_id: ok.message_id().unwrap_or_default().to_owned(),
                        sequence_number: ok.sequence_number().map(str::to_owned),
                    })
                } else if let Some(failure) = failed.get(id.as_str()) {
                    Err(PublishError::Rejected {
                        event_id: entry.event_id,
                        code: failure.code().to_owned(),
                        message: failure.message().unwrap_or_default().to_owned(),
                        retryable: entry_is_retryable(failure.code(), failure.sender_fault()),
                        attempts: 1,
                    })
                } else {
                    Err(PublishError::Request {
                        event_id: entry.event_id,
                        message: format!("SNS's PublishBatch response does not mention entry {id}"),
                        retryable: true,
                        attempts: 1,
                    })
                };
                (entry.clone(), outcome)
            })
            .collect()
    }
}

fn fail_all(
    entries: &[PreparedEntry],
    failure: &RequestFailure,
) -> Vec<(PreparedEntry, Result<Published, PublishError>)> {
    entries
        .iter()
        .map(|entry| {
            (
                entry.clone(),
                Err(request_error(entry.event_id, failure.clone(), 1)),
            )
        })
        .collect()
}

/// A service that answered with an error code rejected the message; anything else is a failed
/// request.
fn request_error(event_id: Uuid, failure: RequestFailure, attempts: u32) -> PublishError {
    match failure.code {
        Some(code) => PublishError::Rejected {
            event_id,
            code,
            message: failure.message,
            retryable: failure.retryable,
            attempts,
        },
        None => PublishError::Request {
            event_id,
            message: failure.message,
            retryable: failure.retryable,
            attempts,
        },
    }
}

fn with_attempts(err: PublishError, total: u32) -> PublishError {
    match err {
        PublishError::Rejected {
            event_id,
            code,
            message,
            retryable,
            ..
        } => PublishError::Rejected {
            event_id,
            code,
            message,
            retryable,
            attempts: total,
        },
        PublishError::Request {
            event_id,
            message,
            retryable,
            ..
        } => PublishError::Request {
            event_id,
            message,
            retryable,
            attempts: total,
        },
        unsent @ (PublishError::Invalid { .. } | PublishError::HeldBack { .. }) => unsent,
    }
}

#[cfg(test)]
mod tests;
