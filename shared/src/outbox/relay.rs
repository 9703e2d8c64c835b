//! The relay step: new outbox rows from a DynamoDB stream batch, published byte for byte, marked
//! sent, or set aside; the stream is retried from the first row that may still succeed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tracing::{error, info, warn};

use super::row::{OutboxRecord, OutboxRow, outbox_record};
use super::store::{FailureSink, OutboxStore, SetAside};
use crate::telemetry::metrics::{InvocationMetrics, MetricsSink, millis};
use crate::{PublishError, Publisher};

/// Failed attempts after which a row is set aside by default.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Publishes outbox events.
pub struct Relay {
    publisher: Publisher,
    outbox: Arc<dyn OutboxStore>,
    failures: Arc<dyn FailureSink>,
    max_attempts: u32,
    metrics: Option<Arc<dyn MetricsSink>>,
    /// Whether this process has handled a batch yet (for `ColdStart`).
    served: AtomicBool,
}

/// What became of one row in this invocation.
enum Fate {
    Published,
    /// Retry the stream from this record.
    Retry,
    /// Set aside in the failure queue, with this `errorKind`.
    SetAside(&'static str),
}

impl Relay {
    /// A relay publishing with `publisher`, marking rows in `outbox`, setting rows aside in
    /// `failures`.
    pub fn new(
        publisher: Publisher,
        outbox: Arc<dyn OutboxStore>,
        failures: Arc<dyn FailureSink>,
    ) -> Self {
        Relay {
            publisher,
            outbox,
            failures,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            metrics: None,
            served: AtomicBool::new(false),
        }
    }

    /// Gives each invocation's metrics to `sink`: the consumer's metrics, read for a stream
    /// (records received; failed: every record from the first one the stream retries, which
    /// Lambda delivers again; before it, succeeded: published or not an outbox row, and
    /// dead-lettered: set aside, by kind; follow-ups: events published; event age: since each
    /// outbox row was written). No handler durations or duplicates.
    pub fn with_metrics(mut self, sink: Arc<dyn MetricsSink>) -> Self {
        self.metrics = Some(sink);
        self
    }

    /// Sets rows aside after `max_attempts` failed attempts (at least 1).
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// One batch of stream records (of the invocation `request_id`): publish every outbox
    /// event; report the first record to retry from.
    pub async fn handle(&self, batch: &StreamEvent, request_id: &str) -> DynamoDbEventResponse {
        let mut metrics = InvocationMetrics {
            request_id: request_id.to_owned(),
            cold_start: !self.served.swap(true, Ordering::Relaxed),
            received: batch.records.len(),
            ..InvocationMetrics::default()
        };
        let now = chrono::Utc::now();
        let mut fates = Vec::with_capacity(batch.records.len());
        let (response, first_retry) = self.relay(batch, &mut fates).await;
        for (i, fate) in fates {
            let written = batch.records[i].change.approximate_creation_date_time;
            // An outbox row's age, unless the stream record has no creation time (read as 1970).
            if fate.is_some() && written.timestamp() > 0 {
                let age = (now - written).to_std().unwrap_or_default();
                metrics.event_age_ms.push(millis(age));
            }
            // Lambda delivers every record from the first one to retry again.
            if first_retry.is_some_and(|first| i >= first) {
                metrics.failed += 1;
                continue;
            }
            match fate {
                Some(Fate::Published) => {
                    metrics.succeeded += 1;
                    metrics.follow_ups += 1;
                }
                None => metrics.succeeded += 1,
                Some(Fate::Retry) => metrics.failed += 1,
                Some(Fate::SetAside(kind)) => *metrics.dead_lettered.entry(kind).or_default() += 1,
            }
        }
        if let Some(sink) = &self.metrics {
            sink.record(&metrics);
        }
        response
    }

    /// The batch's rows published or set aside; each record's fate (`None`: not an outbox
    /// row) in `fates`; the response and the index of the first record to retry from.
    async fn relay(
        &self,
        batch: &StreamEvent,
        fates: &mut Vec<(usize, Option<Fate>)>,
    ) -> (DynamoDbEventResponse, Option<usize>) {
        let mut first_retry: Option<usize> = None;
        let mut rows = Vec::new();
        for (i, record) in batch.records.iter().enumerate() {
            let sequence_number = record.change.sequence_number.clone();
            match outbox_record(record) {
                OutboxRecord::NotOutbox => fates.push((i, None)),
                OutboxRecord::Row(row) => rows.push((i, *row)),
                OutboxRecord::Unreadable { key, reason, image } => {
                    error!(pk = %key.0, sk = %key.1, %reason, "unreadable outbox row; setting it aside");
                    let aside = SetAside {
                        key,
                        body: image,
                        kind: "OutboxRowUnreadable",
                        message: reason,
                        event: None,
                        attempts: 0,
                        sequence_number,
                    };
                    let fate = self.set_aside(&aside).await;
                    if let Fate::Retry = fate {
                        first_retry = first_retry.or(Some(i));
                    }
                    fates.push((i, Some(fate)));
                }
            }
        }
        let encoded: Vec<_> = rows.iter().map(|(_, row)| row.event.clone()).collect();
        let report = self.publisher.publish_encoded(&encoded).await;
        for ((i, row), result) in rows.iter().zip(&report.results) {
            let sequence_number = batch.records[*i].change.sequence_number.clone();
            let fate = match result {
                Ok(published) => {
                    info!(event_id = %row.event.event_id, event_type = %row.event.event_type, message_id = %published.message_id, "outbox event published");
                    if let Err(err) = self.outbox.mark_sent(row).await {
                        warn!(event_id = %row.event.event_id, error = %err, "published but not marked sent");
                    }
                    Fate::Published
                }
                Err(err) => self.failed(row, err, sequence_number).await,
            };
            if let Fate::Retry = fate {
                first_retry = Some(first_retry.map_or(*i, |f| f.min(*i)));
            }
            fates.push((*i, Some(fate)));
        }
        let mut response = DynamoDbEventResponse::default();
        if let Some(i) = first_retry {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = batch.records[i].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        (response, first_retry)
    }

    /// A row that was not published: retried (counted on the row), or set aside for good.
    async fn failed(
        &self,
        row: &OutboxRow,
        err: &PublishError,
        sequence_number: Option<String>,
    ) -> Fate {
        let aside = |kind, attempts| SetAside {
            key: (row.pk.clone(), row.sk.clone()),
            body: row.event.body.clone(),
            kind,
            message: err.to_string(),
            event: Some((row.event.event_id.to_string(), row.event.event_type.clone())),
            attempts,
            sequence_number: sequence_number.clone(),
        };
        let kind = match err {
            PublishError::HeldBack { .. } => "HeldBack",
            PublishError::Invalid { .. } | PublishError::Rejected { .. } => "PublishRejected",
            PublishError::Request { .. } => "PublishFailed",
        };
        if !err.is_retryable() {
            error!(event_id = %row.event.event_id, error = %err, "outbox event cannot be published; setting it aside");
            return self.set_aside(&aside(kind, 1)).await;
        }
        match self
            .outbox
            .record_failed_attempt(row, &err.to_string())
            .await
        {
            Ok(attempts) if attempts >= self.max_attempts => {
                error!(event_id = %row.event.event_id, attempts, error = %err, "outbox event failed too often; setting it aside");
                self.set_aside(&aside(kind, attempts)).await
            }
            Ok(attempts) => {
                warn!(event_id = %row.event.event_id, attempts, error = %err, "outbox event not published; the stream will retry");
                Fate::Retry
            }
            Err(count_error) => {
                warn!(event_id = %row.event.event_id, error = %err, %count_error, "outbox event not published, attempt not counted; the stream will retry");
                Fate::Retry
            }
        }
    }

    async fn set_aside(&self, row: &SetAside) -> Fate {
        match self.failures.set_aside(row).await {
            Ok(()) => Fate::SetAside(row.kind),
            Err(err) => {
                error!(pk = %row.key.0, sk = %row.key.1, error = %err, "could not set the row aside; the stream will retry");
                Fate::Retry
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use crate::event::examples;
    use crate::publish::RetryPolicy;
    use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;
    use serde_json::json;

    use super::*;

    #[derive(Default)]
    struct Outbox {
        sent: Mutex<Vec<String>>,
        attempts: Mutex<std::collections::HashMap<String, u32>>,
    }

    #[async_trait::async_trait]
    impl OutboxStore for Outbox {
        async fn mark_sent(&self, row: &OutboxRow) -> Result<(), crate::aws::AwsError> {
            self.sent.lock().unwrap().push(row.sk.clone());
            Ok(())
        }
        async fn record_failed_attempt(
            &self,
            row: &OutboxRow,
            _: &str,
        ) -> Result<u32, crate::aws::AwsError> {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(row.sk.clone()).or_default();
            *n += 1;
            Ok(*n)
        }
    }

    #[derive(Default)]
    struct Aside(Mutex<Vec<SetAside>>);

    #[async_trait::async_trait]
    impl FailureSink for Aside {
        async fn set_aside(&self, row: &SetAside) -> Result<(), crate::aws::AwsError> {
            self.0.lock().unwrap().push(row.clone());
            Ok(())
        }
    }

    fn publisher(responses: Vec<String>) -> Publisher {
        let events = responses
            .into_iter()
            .map(|body| {
                ReplayEvent::new(
                    http::Request::builder()
                        .uri("https://sns.us-east-1.amazonaws.com/")
                        .body(SdkBody::empty())
                        .unwrap(),
                    http::Response::builder()
                        .status(200)
                        .body(SdkBody::from(body))
                        .unwrap(),
                )
            })
            .collect();
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
            .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
            .http_client(StaticReplayClient::new(events))
            .build();
        Publisher::new(
            aws_sdk_sns::Client::from_conf(config),
            "arn:aws:sns:us-east-1:123456789012:t",
        )
        .with_retry_policy(RetryPolicy {
            max_attempts: 1,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        })
    }

    /// A PublishBatch answer: `ok` entries accepted, `failed` ones refused with (code, sender fault).
    fn answer(ok: &[usize], failed: &[(usize, &str, bool)]) -> String {
        let ok: String = ok
            .iter()
            .map(|i| format!("<member><Id>e{i}</Id><MessageId>m{i}</MessageId></member>"))
            .collect();
        let failed: String = failed
            .iter()
            .map(|(i, code, sender)| format!("<member><Id>e{i}</Id><Code>{code}</Code><Message>no</Message><SenderFault>{sender}</SenderFault></member>"))
            .collect();
        format!(
            "<PublishBatchResponse><PublishBatchResult><Successful>{ok}</Successful><Failed>{failed}</Failed></PublishBatchResult></PublishBatchResponse>"
        )
    }

    fn outbox_batch(n: usize) -> StreamEvent {
        let records: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let event = examples::order_placed();
                json!({
                    "eventID": format!("r{i}"), "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                    "dynamodb": {"Keys": {"pk": {"S": "ORDER#ord-1001"}, "sk": {"S": format!("OUTBOX#{i}")}},
                                 "NewImage": {"pk": {"S": "ORDER#ord-1001"}, "sk": {"S": format!("OUTBOX#{i}")}, "event": {"S": event.encode().unwrap()}},
                                 "SequenceNumber": format!("{}", 100 + i), "SizeBytes": 10, "StreamViewType": "NEW_IMAGE",
                                 "ApproximateCreationDateTime": chrono::Utc::now().timestamp() - 2}
                })
            })
            .collect();
        serde_json::from_value(json!({"Records": records})).unwrap()
    }

    #[tokio::test]
    async fn a_row_that_fails_for_good_is_set_aside_and_does_not_hold_back_the_rows_behind_it() {
        // GIVEN SNS refuses the first of three rows for good
        let outbox = Arc::new(Outbox::default());
        let aside = Arc::new(Aside::default());
        let metrics = Arc::new(crate::testing::RecordingMetrics::new());
        let relay = Relay::new(
            publisher(vec![answer(&[1, 2], &[(0, "InvalidParameter", true)])]),
            outbox.clone(),
            aside.clone(),
        )
        .with_metrics(metrics.clone());
        // WHEN the relay handles the batch
        let response = relay.handle(&outbox_batch(3), "r").await;
        // THEN nothing is retried, the rows behind it are sent, and it is set aside with why
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        assert_eq!(*outbox.sent.lock().unwrap(), ["OUTBOX#1", "OUTBOX#2"]);
        let aside = aside.0.lock().unwrap();
        assert_eq!(aside.len(), 1);
        assert_eq!(aside[0].kind, "PublishRejected");
        assert_eq!(aside[0].key.1, "OUTBOX#0");
        assert_eq!(aside[0].sequence_number.as_deref(), Some("100"));
        assert!(
            aside[0].message.contains("InvalidParameter"),
            "{}",
            aside[0].message
        );
        // AND its metrics say so: two published, one set aside by kind, none retried
        let invocation = &metrics.invocations()[0];
        assert!(invocation.cold_start);
        assert_eq!(
            (invocation.received, invocation.succeeded, invocation.failed),
            (3, 2, 0)
        );
        assert_eq!(invocation.follow_ups, 2);
        // Every outbox row's age: since it was written, two seconds ago (to the second).
        assert_eq!(invocation.event_age_ms.len(), 3);
        assert!(
            invocation
                .event_age_ms
                .iter()
                .all(|ms| (1_000.0..10_000.0).contains(ms)),
            "{:?}",
            invocation.event_age_ms
        );
        assert_eq!(invocation.dead_lettered.get("PublishRejected"), Some(&1));
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_from_its_record_until_the_attempts_run_out() {
        let outbox = Arc::new(Outbox::default());
        let aside = Arc::new(Aside::default());
        let throttled = || answer(&[0], &[(1, "Throttled", true)]);
        let relay = Relay::new(
            publisher(vec![throttled(), throttled()]),
            outbox.clone(),
            aside.clone(),
        )
        .with_max_attempts(2);
        // First attempt: retry from the failed record (the second).
        let metrics = Arc::new(crate::testing::RecordingMetrics::new());
        let relay = relay.with_metrics(metrics.clone());
        let first = relay.handle(&outbox_batch(2), "r").await;
        assert_eq!(
            first.batch_item_failures[0].item_identifier.as_deref(),
            Some("101")
        );
        assert!(aside.0.lock().unwrap().is_empty());
        // Second attempt: out of attempts, set aside; the shard moves on.
        let second = relay.handle(&outbox_batch(2), "r").await;
        assert!(second.batch_item_failures.is_empty());
        let counted: Vec<(usize, usize, bool)> = metrics
            .invocations()
            .iter()
            .map(|m| (m.failed, m.dead_lettered_total(), m.cold_start))
            .collect();
        assert_eq!(counted, [(1, 0, true), (0, 1, false)]);
        let first = &metrics.invocations()[0];
        assert_eq!(
            (first.succeeded, first.follow_ups),
            (1, 1),
            "the row before the retry went out"
        );
        let aside = aside.0.lock().unwrap();
        assert_eq!((aside[0].kind, aside[0].attempts), ("PublishRejected", 2));
    }

    #[tokio::test]
    async fn an_unreadable_row_is_set_aside_at_once() {
        let aside = Arc::new(Aside::default());
        let relay = Relay::new(
            publisher(vec![]),
            Arc::new(Outbox::default()),
            aside.clone(),
        );
        let mut batch = outbox_batch(1);
        batch.records[0].change.new_image.remove("event");
        let response = relay.handle(&batch, "r").await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(aside.0.lock().unwrap()[0].kind, "OutboxRowUnreadable");
    }
}
