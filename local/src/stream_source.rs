//! A DynamoDB stream event source mapping, as Lambda runs one: every shard in order (a
//! parent before its children), from `StartingPosition`, in batches of `BatchSize`, records
//! `FilterCriteria` filters out skipped. A failed batch is retried: from the sequence number a
//! partial batch response reports, or split in two when `BisectBatchOnFunctionError` is set
//! and the function failed; after `MaximumRetryAttempts` retries, or once its records are older
//! than `MaximumRecordAgeInSeconds`, the batch goes to the `OnFailure` queue in AWS's shape and
//! the shard moves on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord, StreamRecord};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::filter;
use crate::function::{Function, Outcome};
use crate::logs::LogSink;
use crate::provision::StreamSource;

/// What the runner asks of a stream mapping besides its spec.
#[derive(Clone)]
pub struct StreamPoller {
    /// The mapping.
    pub source: StreamSource,
    /// The function.
    pub function: Arc<Function>,
    /// Streams client.
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// SQS client (the on-failure destination).
    pub sqs: aws_sdk_sqs::Client,
    /// Region.
    pub region: String,
    /// Deliver every batch twice (at-least-once, made visible).
    pub duplicate_batches: bool,
    /// Logs.
    pub log: LogSink,
    /// Records read but not yet through (for "is everything done?").
    pub pending: Arc<AtomicUsize>,
    /// Whether the last read of every shard came back empty.
    pub caught_up: Arc<AtomicBool>,
    /// Passes over every shard that read nothing, so far.
    pub empty_passes: Arc<AtomicUsize>,
}

struct Shard {
    id: String,
    parent: Option<String>,
    iterator: Option<String>,
    /// The last sequence number read, to carry on after it.
    last: Option<String>,
    /// The shard has an ending sequence number: no more records will come.
    closed: bool,
    /// The last read was refused as past the oldest record: carry on from the oldest there is.
    trimmed: bool,
}

impl StreamPoller {
    /// Follows the stream until `stop` says so.
    pub async fn run(self, mut paused: watch::Receiver<bool>, mut stop: watch::Receiver<bool>) {
        let mut shards: Vec<Shard> = Vec::new();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let mut known: BTreeSet<String> = BTreeSet::new();
        let mut first = true;
        loop {
            if *stop.borrow() {
                return;
            }
            if *paused.borrow() {
                tokio::select! { _ = paused.changed() => {} _ = stop.changed() => return }
                continue;
            }
            // New shards (children appear as parents close).
            if let Ok(described) = self
                .streams
                .describe_stream()
                .stream_arn(&self.source.stream_arn)
                .send()
                .await
            {
                for shard in described
                    .stream_description()
                    .map(|d| d.shards())
                    .unwrap_or_default()
                {
                    let Some(id) = shard.shard_id() else { continue };
                    let closed = shard
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .is_some();
                    if known.insert(id.to_owned()) {
                        shards.push(Shard {
                            id: id.to_owned(),
                            parent: shard.parent_shard_id().map(str::to_owned),
                            iterator: None,
                            last: None,
                            closed,
                            trimmed: false,
                        });
                    } else if let Some(known) = shards.iter_mut().find(|s| s.id == id) {
                        known.closed = closed;
                    }
                }
            }
            let mut read_any = false;
            for shard in &mut shards {
                if finished.contains(&shard.id) {
                    continue;
                }
                // A child waits until its parent is done (if we know the parent).
                if shard
                    .parent
                    .as_ref()
                    .is_some_and(|p| known.contains(p) && !finished.contains(p))
                {
                    continue;
                }
                if shard.iterator.is_none() {
                    let mut request = self
                        .streams
                        .get_shard_iterator()
                        .stream_arn(&self.source.stream_arn)
                        .shard_id(&shard.id);
                    request = match &shard.last {
                        // AWS's answer to TrimmedDataAccessException, as Lambda's event source
                        // mapping does: the records before the horizon are gone.
                        _ if shard.trimmed => {
                            request.shard_iterator_type(ShardIteratorType::TrimHorizon)
                        }
                        // Carry on after the last record read (an emulator may give no next
                        // iterator for an open shard).
                        Some(last) => request
                            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                            .sequence_number(last),
                        None if first && self.source.starting_position == "LATEST" => {
                            request.shard_iterator_type(ShardIteratorType::Latest)
                        }
                        None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                    };
                    match request.send().await {
                        Ok(out) => shard.iterator = out.shard_iterator().map(str::to_owned),
                        Err(err) => {
                            self.log.runner(&format!(
                                "{}: GetShardIterator failed: {}",
                                self.source.name,
                                orderflow::aws::error_chain(&err)
                            ));
                            continue;
                        }
                    }
                }
                let Some(iterator) = shard.iterator.clone() else {
                    continue;
                };
                let out = match self
                    .streams
                    .get_records()
                    .shard_iterator(&iterator)
                    .limit(self.source.batch_size as i32)
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(err) => {
                        // Trimmed (on DynamoDB Local also an iterator taken on a shard still
                        // empty when other tables wrote) or expired: a new iterator next pass.
                        shard.trimmed = err
                            .as_service_error()
                            .is_some_and(|e| e.is_trimmed_data_access_exception());
                        shard.iterator = None;
                        self.log.runner(&format!(
                            "{}: GetRecords failed: {}",
                            self.source.name,
                            orderflow::aws::error_chain(&err)
                        ));
                        continue;
                    }
                };
                shard.trimmed = false;
                shard.iterator = out.next_shard_iterator().map(str::to_owned);
                if let Some(last) = out
                    .records()
                    .last()
                    .and_then(|r| r.dynamodb())
                    .and_then(|d| d.sequence_number())
                {
                    shard.last = Some(last.to_owned());
                }
                if shard.iterator.is_none() && shard.closed && out.records().is_empty() {
                    finished.insert(shard.id.clone());
                }
                // Carry on after the last record read rather than from the next iterator: an
                // emulator's next iterator may skip as many positions as the limit asked for
                // (moto's does), and records written later in that range would be lost.
                if shard.last.is_some() && !shard.closed {
                    shard.iterator = None;
                }
                let records: Vec<EventRecord> =
                    out.records().iter().map(|r| self.convert(r)).collect();
                if records.is_empty() {
                    continue;
                }
                read_any = true;
                let passing: Vec<EventRecord> = records
                    .into_iter()
                    .filter(|r| {
                        filter::passes(
                            &self.source.filters,
                            &serde_json::to_value(r).unwrap_or_default(),
                        )
                    })
                    .collect();
                if passing.is_empty() {
                    continue;
                }
                self.pending.fetch_add(passing.len(), Ordering::SeqCst);
                let count = passing.len();
                self.process(&shard.id, passing).await;
                self.pending.fetch_sub(count, Ordering::SeqCst);
            }
            first = false;
            self.caught_up.store(!read_any, Ordering::SeqCst);
            if !read_any {
                self.empty_passes.fetch_add(1, Ordering::SeqCst);
            }
            if !read_any {
                let wait = self.source.batching_window.max(Duration::from_millis(250));
                tokio::select! { () = tokio::time::sleep(wait) => {} _ = stop.changed() => return }
            }
        }
    }

    fn convert(&self, record: &Record) -> EventRecord {
        stream_record(record, &self.source.stream_arn, &self.region)
    }

    /// One batch with Lambda's retry rules; returns when it is through or given up on.
    async fn process(&self, shard: &str, batch: Vec<EventRecord>) {
        let mut queue: Vec<(Vec<EventRecord>, i64)> = vec![(batch, 0)];
        while let Some((records, retries)) = queue.pop() {
            if records.is_empty() {
                continue;
            }
            let oldest = records
                .iter()
                .map(|r| r.change.approximate_creation_date_time)
                .min()
                .unwrap_or_default();
            let too_old = self.source.maximum_record_age >= 0
                && (chrono::Utc::now() - oldest).num_seconds() > self.source.maximum_record_age;
            let out_of_retries = self.source.maximum_retry_attempts >= 0
                && retries > self.source.maximum_retry_attempts;
            if too_old || out_of_retries {
                let condition = if too_old {
                    "RecordAgeExceeded"
                } else {
                    "RetryAttemptsExhausted"
                };
                self.give_up(shard, &records, condition, retries).await;
                continue;
            }
            let mut event = StreamEvent::default();
            event.records = records.clone();
            let payload = match serde_json::to_vec(&event) {
                Ok(payload) => Bytes::from(payload),
                Err(err) => {
                    self.log.runner(&format!(
                        "{}: cannot shape the batch: {err}",
                        self.source.name
                    ));
                    return;
                }
            };
            let deliveries = if self.duplicate_batches { 2 } else { 1 };
            let mut outcome = Outcome::Crashed("not invoked".into());
            for _ in 0..deliveries {
                outcome = self.function.invoke(payload.clone(), records.len()).await.0;
            }
            match retry_from(&outcome, &records, self.source.report_batch_item_failures) {
                Retry::Done => {}
                Retry::From(index) => {
                    self.function.count_failed_records(records.len() - index);
                    queue.push((records[index..].to_vec(), retries + 1));
                }
                Retry::Whole if self.source.bisect_on_error && records.len() > 1 => {
                    let half = records.len() / 2;
                    // Second half after the first: order holds.
                    queue.push((records[half..].to_vec(), retries + 1));
                    queue.push((records[..half].to_vec(), retries + 1));
                }
                Retry::Whole => queue.push((records, retries + 1)),
            }
            if !queue.is_empty() {
                // Lambda backs off between retries of a stream batch.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Sends the batch's description to the on-failure queue, as Lambda does.
    async fn give_up(&self, shard: &str, records: &[EventRecord], condition: &str, retries: i64) {
        let first = records.first();
        let last = records.last();
        let document = json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": self.function.arn(),
                "condition": condition,
                "approximateInvokeCount": retries + 1,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": first.and_then(|r| r.change.sequence_number.clone()),
                "endSequenceNumber": last.and_then(|r| r.change.sequence_number.clone()),
                "approximateArrivalOfFirstRecord": first.map(|r| r.change.approximate_creation_date_time.to_rfc3339()),
                "approximateArrivalOfLastRecord": last.map(|r| r.change.approximate_creation_date_time.to_rfc3339()),
                "batchSize": records.len(),
                "streamArn": self.source.stream_arn,
            },
        });
        self.log.runner(&format!(
            "{}: gave up on {} records ({condition})",
            self.source.name,
            records.len()
        ));
        let Some((_, url)) = &self.source.on_failure else {
            return;
        };
        if let Err(err) = self
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(document.to_string())
            .send()
            .await
        {
            self.log.runner(&format!(
                "{}: could not send to the on-failure queue: {}",
                self.source.name,
                orderflow::aws::error_chain(&err)
            ));
        }
    }
}

#[derive(Debug, PartialEq)]
enum Retry {
    Done,
    From(usize),
    Whole,
}

/// Where a batch resumes after the function's answer: done, from a record, or the whole batch.
fn retry_from(
    outcome: &Outcome,
    records: &[EventRecord],
    report_batch_item_failures: bool,
) -> Retry {
    let Outcome::Response(body) = outcome else {
        return Retry::Whole;
    };
    if !report_batch_item_failures {
        return Retry::Done;
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() || text.trim() == "null" {
        return Retry::Done;
    }
    let Ok(response) = serde_json::from_str::<Value>(&text) else {
        return Retry::Whole;
    };
    let entries = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return Retry::Done,
        Some(Value::Array(entries)) if entries.is_empty() => return Retry::Done,
        Some(Value::Array(entries)) => entries,
        Some(_) => return Retry::Whole,
    };
    // The checkpoint is the lowest sequence number reported.
    let mut first: Option<usize> = None;
    for entry in entries {
        let Some(sequence) = entry.get("itemIdentifier").and_then(Value::as_str) else {
            return Retry::Whole;
        };
        let Some(index) = records
            .iter()
            .position(|r| r.change.sequence_number.as_deref() == Some(sequence))
        else {
            return Retry::Whole;
        };
        first = Some(first.map_or(index, |f| f.min(index)));
    }
    first.map_or(Retry::Done, Retry::From)
}

/// A stream record read with the SDK, as Lambda's event source mapping hands it to a function.
pub fn stream_record(record: &Record, stream_arn: &str, region: &str) -> EventRecord {
    let mut converted = EventRecord::default();
    converted.event_id = record.event_id().unwrap_or_default().to_owned();
    converted.event_name = record
        .event_name()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    converted.event_version = record.event_version().map(str::to_owned);
    converted.event_source = Some("aws:dynamodb".into());
    converted.event_source_arn = Some(stream_arn.to_owned());
    converted.aws_region = region.to_owned();
    let mut change = StreamRecord::default();
    if let Some(data) = record.dynamodb() {
        change.keys = serde_dynamo::Item::from(data.keys().cloned().unwrap_or_default());
        change.new_image = serde_dynamo::Item::from(data.new_image().cloned().unwrap_or_default());
        change.old_image = serde_dynamo::Item::from(data.old_image().cloned().unwrap_or_default());
        change.sequence_number = data.sequence_number().map(str::to_owned);
        change.size_bytes = data.size_bytes().unwrap_or_default();
        change.approximate_creation_date_time = data
            .approximate_creation_date_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
            .unwrap_or_default();
        if let Some(view) = data.stream_view_type() {
            change.stream_view_type = serde_json::from_value(json!(view.as_str())).ok();
        }
    }
    converted.change = change;
    converted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<EventRecord> {
        (0..n)
            .map(|i| {
                let mut record = EventRecord::default();
                record.change.sequence_number = Some(format!("{}", 100 + i));
                record
            })
            .collect()
    }

    #[test]
    fn a_partial_batch_response_checkpoints_at_the_lowest_reported_record() {
        let batch = records(4);
        let answer = |body: &str| Outcome::Response(Bytes::from(body.to_owned()));
        assert_eq!(
            retry_from(
                &answer(
                    r#"{"batchItemFailures":[{"itemIdentifier":"103"},{"itemIdentifier":"101"}]}"#
                ),
                &batch,
                true
            ),
            Retry::From(1)
        );
        for done in ["", "null", "{}", r#"{"batchItemFailures":[]}"#] {
            assert_eq!(
                retry_from(&answer(done), &batch, true),
                Retry::Done,
                "{done}"
            );
        }
        for whole in [
            r#"{"batchItemFailures":[{"itemIdentifier":"999"}]}"#,
            r#"{"batchItemFailures":[{}]}"#,
            "oops",
        ] {
            assert_eq!(
                retry_from(&answer(whole), &batch, true),
                Retry::Whole,
                "{whole}"
            );
        }
        assert_eq!(
            retry_from(
                &Outcome::Error {
                    error_type: "E".into(),
                    message: "m".into()
                },
                &batch,
                true
            ),
            Retry::Whole
        );
        assert_eq!(
            retry_from(
                &answer(r#"{"batchItemFailures":[{"itemIdentifier":"101"}]}"#),
                &batch,
                false
            ),
            Retry::Done
        );
    }
}
