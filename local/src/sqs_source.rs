//! An SQS event source mapping, as Lambda runs one: `MaximumConcurrency` pollers long-poll the
//! queue for batches of `BatchSize` within `MaximumBatchingWindowInSeconds`, drop (and delete)
//! what `FilterCriteria` filters out, invoke the function with the records exactly as Lambda
//! shapes them, and then delete the batch except the failures the function reports. A function
//! error, a timeout, a crash or an invalid `batchItemFailures` entry deletes nothing: the
//! batch comes back after its visibility timeout. FIFO queues give out one group's messages
//! only while none of them is in flight, so a group has one batch in flight at most.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

use crate::filter;
use crate::function::{Function, Outcome};
use crate::logs::LogSink;
use crate::provision::SqsSource;

/// One poller's loop; returns when `stop` says so.
pub async fn poll(
    source: SqsSource,
    function: Arc<Function>,
    sqs: aws_sdk_sqs::Client,
    region: String,
    mut paused: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    log: LogSink,
) {
    loop {
        if !running(&mut paused, &mut stop).await {
            return;
        }
        let batch = tokio::select! {
            batch = receive(&sqs, &source, &log) => batch,
            _ = stop.changed() => return,
        };
        // Stopped while the long poll was out: keep the batch and hand it to the function
        // when it runs again, as a batch taken just before a mapping is disabled is still
        // processed. Handing it straight back let the other pollers' long polls, out since
        // before the stop, take it and hand it back in turn: every turn a receive, so a message
        // reached the redrive policy's maxReceiveCount (5) before its first invocation, and
        // one failure later it was in the DLQ. (A stop longer than the visibility timeout lets
        // the messages be received again meanwhile: a redelivery idempotency absorbs.)
        if batch.as_ref().is_ok_and(|messages| !messages.is_empty())
            && !running(&mut paused, &mut stop).await
        {
            return;
        }
        let messages = match batch {
            Ok(messages) => messages,
            Err(err) => {
                log.runner(&format!("{}: ReceiveMessage failed: {err}", source.name));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let (passing, filtered): (Vec<Message>, Vec<Message>) = messages
            .into_iter()
            .partition(|m| filter::passes(&source.filters, &filter_view(m)));
        if !filtered.is_empty() {
            delete(&sqs, &source, &filtered, &log).await;
        }
        if passing.is_empty() {
            continue;
        }
        handle(&source, &function, &sqs, &region, passing, &log).await;
    }
}

/// Waits while the function is stopped; `false` once the runner stops (then or meanwhile).
async fn running(paused: &mut watch::Receiver<bool>, stop: &mut watch::Receiver<bool>) -> bool {
    while *paused.borrow() {
        tokio::select! {
            _ = paused.changed() => {}
            _ = stop.changed() => return false,
        }
    }
    !*stop.borrow()
}

/// Receives up to `BatchSize` messages, waiting up to the batching window for more.
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    source: &SqsSource,
    log: &LogSink,
) -> Result<Vec<Message>, String> {
    let mut messages = Vec::new();
    let window_end = Instant::now() + source.batching_window;
    loop {
        let want = (source.batch_size as usize - messages.len()).min(10) as i32;
        let wait = if messages.is_empty() {
            2
        } else {
            window_end
                .saturating_duration_since(Instant::now())
                .as_secs()
                .min(20) as i32
        };
        let out = match sqs
            .receive_message()
            .queue_url(&source.queue_url)
            .max_number_of_messages(want.max(1))
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if messages.is_empty() => return Err(orderflow::aws::error_chain(&err)),
            // Messages already received are in flight with one receive spent: hand them over
            // rather than let them wait out the visibility timeout for nothing (an extra
            // receive towards maxReceiveCount without an invocation).
            Err(err) => {
                log.runner(&format!(
                    "{}: ReceiveMessage failed: {}; handing over the {} messages already received",
                    source.name,
                    orderflow::aws::error_chain(&err),
                    messages.len()
                ));
                return Ok(messages);
            }
        };
        let got = out.messages().len();
        messages.extend(out.messages().iter().cloned());
        if messages.len() >= source.batch_size as usize
            || (got == 0 && !messages.is_empty())
            || Instant::now() >= window_end
        {
            return Ok(messages);
        }
        if messages.is_empty() {
            return Ok(messages);
        }
    }
}

/// What a filter pattern sees of a message: its body (parsed when it is JSON) and metadata.
fn filter_view(message: &Message) -> Value {
    let body = message.body().unwrap_or_default();
    serde_json::json!({
        "body": serde_json::from_str::<Value>(body).unwrap_or_else(|_| Value::String(body.to_owned())),
        "messageId": message.message_id(),
        "attributes": message.attributes().map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>()),
    })
}

/// The message ids to keep (retry), or `None` when the whole batch counts as failed.
pub fn failures(
    outcome: &Outcome,
    report_batch_item_failures: bool,
    batch: &HashSet<String>,
) -> Option<HashSet<String>> {
    let Outcome::Response(body) = outcome else {
        return None;
    };
    if !report_batch_item_failures {
        return Some(HashSet::new());
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() || text.trim() == "null" {
        return Some(HashSet::new());
    }
    let response: Value = serde_json::from_str(&text).ok()?;
    let entries = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return Some(HashSet::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return None,
    };
    let mut failed = HashSet::new();
    for entry in entries {
        // AWS: an entry without a usable id, or with one not in the batch, fails the batch.
        let id = entry.get("itemIdentifier").and_then(Value::as_str)?;
        if id.is_empty() || !batch.contains(id) {
            return None;
        }
        failed.insert(id.to_owned());
    }
    Some(failed)
}

async fn handle(
    source: &SqsSource,
    function: &Function,
    sqs: &aws_sdk_sqs::Client,
    region: &str,
    messages: Vec<Message>,
    log: &LogSink,
) {
    let event =
        match orderflow::testing::sqs_event::from_received(&messages, &source.queue_arn, region)
            .and_then(|event| serde_json::to_vec(&event))
        {
            Ok(event) => event,
            Err(err) => {
                log.runner(&format!("{}: cannot shape the batch: {err}", source.name));
                return;
            }
        };
    let (outcome, _) = function.invoke(Bytes::from(event), messages.len()).await;
    let ids: HashSet<String> = messages
        .iter()
        .filter_map(|m| m.message_id().map(str::to_owned))
        .collect();
    match failures(&outcome, source.report_batch_item_failures, &ids) {
        Some(failed) => {
            function.count_failed_records(failed.len());
            let done: Vec<Message> = messages
                .into_iter()
                .filter(|m| !m.message_id().is_some_and(|id| failed.contains(id)))
                .collect();
            delete(sqs, source, &done, log).await;
        }
        None => {
            if outcome.is_response() {
                function.count_failed_records(ids.len());
                log.runner(&format!(
                    "{}: invalid batchItemFailures; the whole batch comes back",
                    source.name
                ));
            }
        }
    }
}

async fn delete(
    sqs: &aws_sdk_sqs::Client,
    source: &SqsSource,
    messages: &[Message],
    log: &LogSink,
) {
    for chunk in messages.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("d{i}"))
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        let result = sqs
            .delete_message_batch()
            .queue_url(&source.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match result {
            Ok(out) if !out.failed().is_empty() => log.runner(&format!(
                "{}: {} messages not deleted; they come back",
                source.name,
                out.failed().len()
            )),
            Ok(_) => {}
            Err(err) => log.runner(&format!(
                "{}: DeleteMessageBatch failed ({}); the batch comes back",
                source.name,
                orderflow::aws::error_chain(&err)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn partial_batch_responses_follow_aws_rules() {
        let batch = ids(&["a", "b", "c"]);
        let response = |body: &str| Outcome::Response(Bytes::from(body.to_owned()));
        assert_eq!(
            failures(
                &response(r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#),
                true,
                &batch
            ),
            Some(ids(&["b"]))
        );
        for success in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
        ] {
            assert_eq!(
                failures(&response(success), true, &batch),
                Some(HashSet::new()),
                "{success}"
            );
        }
        for whole in [
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"zz"}]}"#,
            r#"{"batchItemFailures":[{}]}"#,
            "not json",
            r#"{"batchItemFailures":"b"}"#,
        ] {
            assert_eq!(failures(&response(whole), true, &batch), None, "{whole}");
        }
        // Without ReportBatchItemFailures a response is a success, whatever it says.
        assert_eq!(
            failures(
                &response(r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#),
                false,
                &batch
            ),
            Some(HashSet::new())
        );
        assert_eq!(
            failures(&Outcome::Timeout(Duration::from_secs(1)), true, &batch),
            None
        );
    }
}
