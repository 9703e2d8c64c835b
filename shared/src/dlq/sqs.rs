//! The SQS adapter: every call `orderflow dlq` makes, and the only place SQS types appear.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
};
use chrono::{DateTime, Utc};

use super::message::{Attribute, DeadLetterMessage, EventSummary};
use super::{DeadLetterQueue, DlqError, QueueRef, ReplayOptions, ReplayReport, Selection};
use crate::aws::{AwsError, AwsResultExt, QueueArn};

/// How long a peek holds a message before making it visible again (at once, unless the tool
/// dies: then SQS makes it visible after this).
const PEEK_HOLD: Duration = Duration::from_secs(30);
/// Empty receives in a row after which a queue is taken to be read to the end (SQS's short
/// polling samples a subset of its servers).
const EMPTY_RECEIVES: usize = 3;

/// DLQ operations on SQS.
#[derive(Clone, Debug)]
pub struct Dlq {
    client: Client,
}

impl Dlq {
    /// Operations through `client`.
    pub fn new(client: Client) -> Self {
        Dlq { client }
    }

    /// Every DLQ whose name starts with `prefix` (a stack's name: CloudFormation and the local
    /// runner name queues `<stack>-…`), with its sources.
    pub async fn discover(&self, prefix: &str) -> Result<Vec<DeadLetterQueue>, DlqError> {
        let mut urls = Vec::new();
        let mut next = None;
        loop {
            let page = self
                .client
                .list_queues()
                .queue_name_prefix(prefix)
                .max_results(1000)
                .set_next_token(next)
                .send()
                .await
                .aws("SQS ListQueues", prefix)?;
            urls.extend(page.queue_urls().iter().cloned());
            next = page.next_token().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
        let mut found = Vec::new();
        for url in urls {
            let sources = self.sources_of(&url).await?;
            if !sources.is_empty() {
                found.push(DeadLetterQueue {
                    queue: self.by_url(&url).await?,
                    sources,
                });
            }
        }
        found.sort_by(|a, b| a.queue.name.cmp(&b.queue.name));
        Ok(found)
    }

    /// The DLQ `queue` (a name, URL or ARN), with its sources.
    pub async fn dead_letter_queue(&self, queue: &str) -> Result<DeadLetterQueue, DlqError> {
        let queue = self.resolve(queue).await?;
        let sources = self.sources_of(&queue.url).await?;
        if sources.is_empty() {
            return Err(DlqError::NotADeadLetterQueue(queue.name));
        }
        Ok(DeadLetterQueue { queue, sources })
    }

    /// A queue by name, URL or ARN.
    pub async fn resolve(&self, queue: &str) -> Result<QueueRef, DlqError> {
        if queue.starts_with("http://") || queue.starts_with("https://") {
            return self.by_url(queue).await;
        }
        let (name, account) = match QueueArn::parse(queue) {
            Some(arn) => (arn.name, Some(arn.account)),
            None if queue.starts_with("arn:") => {
                return Err(DlqError::UnknownQueue(queue.to_owned()));
            }
            None => (queue, None),
        };
        let url = self
            .client
            .get_queue_url()
            .queue_name(name)
            .set_queue_owner_aws_account_id(account.map(str::to_owned))
            .send()
            .await
            .map_err(|err| unknown_or(AwsError::new("SQS GetQueueUrl", name, &err), queue))?
            .queue_url()
            .map(str::to_owned)
            .ok_or_else(|| DlqError::UnknownQueue(queue.to_owned()))?;
        self.by_url(&url).await
    }

    /// The queue at `url`, with its ARN.
    async fn by_url(&self, url: &str) -> Result<QueueRef, DlqError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|err| unknown_or(AwsError::new("SQS GetQueueAttributes", url, &err), url))?;
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| {
                AwsError::other(
                    "SQS GetQueueAttributes",
                    url,
                    "no QueueArn in the answer",
                    false,
                )
            })?;
        Ok(QueueRef {
            name: QueueArn::parse(&arn)
                .map(|a| a.name)
                .unwrap_or_default()
                .to_owned(),
            url: url.to_owned(),
            arn,
        })
    }

    /// The queues whose redrive policy names the queue at `url`.
    async fn sources_of(&self, url: &str) -> Result<Vec<QueueRef>, DlqError> {
        let mut sources = Vec::new();
        let mut next = None;
        loop {
            let answer = self
                .client
                .list_dead_letter_source_queues()
                .queue_url(url)
                .max_results(1000)
                .set_next_token(next)
                .send()
                .await
                .aws("SQS ListDeadLetterSourceQueues", url)?;
            for source in answer.queue_urls() {
                sources.push(self.by_url(source).await?);
            }
            next = answer.next_token().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
        Ok(sources)
    }

    /// Messages visible and in flight (`ApproximateNumberOfMessages…`).
    pub async fn depth(&self, queue: &QueueRef) -> Result<(u64, u64), DlqError> {
        let answer = self
            .client
            .get_queue_attributes()
            .queue_url(&queue.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .aws("SQS GetQueueAttributes", &queue.name)?;
        let number = |name: QueueAttributeName| {
            answer
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            number(QueueAttributeName::ApproximateNumberOfMessages),
            number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// Every visible message of `queue` (at most `limit`), left where it was: each is received
    /// with a short visibility timeout and made visible again once all are read. On a FIFO
    /// queue a group's messages behind one in flight stay hidden, so fewer may be read than
    /// the queue holds.
    pub async fn peek(
        &self,
        queue: &QueueRef,
        limit: usize,
    ) -> Result<Vec<DeadLetterMessage>, DlqError> {
        let mut messages = Vec::new();
        let mut reader = Reader::default();
        let read = loop {
            match self.receive(queue, PEEK_HOLD, &mut reader).await {
                Ok(batch) if batch.is_empty() => break Ok(()),
                Ok(batch) => {
                    messages.extend(batch);
                    if messages.len() >= limit {
                        break Ok(());
                    }
                }
                Err(err) => break Err(err),
            }
        };
        self.release(queue, &messages).await;
        read.map(|()| messages)
    }

    /// The next messages not seen before, each held for `hold`; empty once the queue has
    /// given nothing new [`EMPTY_RECEIVES`] times in a row.
    async fn receive(
        &self,
        queue: &QueueRef,
        hold: Duration,
        reader: &mut Reader,
    ) -> Result<Vec<DeadLetterMessage>, DlqError> {
        while reader.empty < EMPTY_RECEIVES {
            let answer = self
                .client
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(10)
                .visibility_timeout(hold.as_secs() as i32)
                .wait_time_seconds(if reader.empty == 0 { 0 } else { 1 })
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .aws("SQS ReceiveMessage", &queue.name)?;
            let new: Vec<DeadLetterMessage> = answer
                .messages()
                .iter()
                .map(read)
                .filter(|m| reader.seen.insert(m.message_id.clone()))
                .collect();
            if new.is_empty() {
                reader.empty += 1;
            } else {
                reader.empty = 0;
                return Ok(new);
            }
        }
        Ok(Vec::new())
    }

    /// Makes `messages` visible again at once; best effort (a message not released comes back
    /// when its hold ends), logged.
    async fn release(&self, queue: &QueueRef, messages: &[DeadLetterMessage]) {
        for chunk in messages.chunks(10) {
            let entries: Result<Vec<_>, _> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(&m.receipt_handle)
                        .visibility_timeout(0)
                        .build()
                })
                .collect();
            let Ok(entries) = entries else { continue };
            let answer = self
                .client
                .change_message_visibility_batch()
                .queue_url(&queue.url)
                .set_entries(Some(entries))
                .send()
                .await
                .aws("SQS ChangeMessageVisibilityBatch", &queue.name);
            match answer {
                Ok(answer) if !answer.failed().is_empty() => tracing::warn!(
                    queue = %queue.name,
                    failed = answer.failed().len(),
                    "some messages were not made visible again; they come back when their hold ends"
                ),
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "messages not made visible again; they come back when their hold ends")
                }
            }
        }
    }

    /// Moves the `selection` of `dlq` back to where each message came from; `on_moved` is
    /// called after each (a progress bar). With `dry_run`, says what it would move and moves
    /// nothing. At most `rate` messages a second, if given.
    ///
    /// Every message is taken the same way: received (ten at a time, held for `hold`), sent to
    /// its source, and only then deleted; a message whose send fails stays in the DLQ and is
    /// reported with why; messages not selected are made visible again at the end. When every
    /// message is selected and the DLQ has one source, SQS's own `StartMessageMoveTask` is
    /// tried first (it keeps the failure attributes, which consumers ignore); an endpoint
    /// that refuses it (moto) gets the one-by-one move, and the report says why.
    pub async fn replay(
        &self,
        dlq: &DeadLetterQueue,
        selection: &Selection,
        options: &ReplayOptions,
        mut on_moved: impl FnMut(&DeadLetterMessage),
    ) -> Result<ReplayReport, DlqError> {
        let mut report = ReplayReport::default();
        if *selection == Selection::All
            && !options.dry_run
            && let [source] = dlq.sources.as_slice()
        {
            match self.move_task(dlq, source, options.rate).await? {
                MoveTask::Done { moved, to_move } => {
                    report.by_move_task = Some((moved, to_move, source.clone()));
                    return Ok(report);
                }
                MoveTask::Refused(why) => report.move_task_refused = Some(why),
            }
        }
        let pause = options
            .rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        let mut left = Vec::new();
        let mut reader = Reader::default();
        loop {
            let batch = match self.receive(&dlq.queue, options.hold, &mut reader).await {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => batch,
                Err(err) => {
                    report.stopped = Some(err.to_string());
                    break;
                }
            };
            for message in batch {
                if !selection.takes(&message) {
                    report.skipped += 1;
                    left.push(message);
                    continue;
                }
                let Some(source) = dlq.source_of(&message).cloned() else {
                    report.failed.push((
                        message.clone(),
                        "cannot tell its source queue: no sourceQueue attribute, and the DLQ has several sources".into(),
                    ));
                    left.push(message);
                    continue;
                };
                if options.dry_run {
                    left.push(message.clone());
                    report.moved.push((message, source));
                    continue;
                }
                match self.send_back(&message, &source).await {
                    Ok(()) => {
                        // Sent: now, and only now, it may leave the DLQ. A failed delete leaves
                        // a copy in both queues, which the consumer's idempotency absorbs.
                        match self.delete(&dlq.queue, &message).await {
                            Ok(()) => {
                                on_moved(&message);
                                report.moved.push((message, source));
                            }
                            Err(err) => report.failed.push((
                                message,
                                format!(
                                    "sent, but not deleted from the DLQ (it is in both): {err}"
                                ),
                            )),
                        }
                    }
                    Err(err) => {
                        report.failed.push((message.clone(), err.to_string()));
                        left.push(message);
                    }
                }
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
            }
        }
        self.release(&dlq.queue, &left).await;
        Ok(report)
    }

    /// SQS moves every message itself, at most `rate` a second; `Refused` if the endpoint will
    /// not (the caller then moves them one by one). Waits for the task to end, at most ten
    /// minutes; a task still running then is an error (moving by hand beside it would race).
    async fn move_task(
        &self,
        dlq: &DeadLetterQueue,
        source: &QueueRef,
        rate: Option<f64>,
    ) -> Result<MoveTask, DlqError> {
        let asked_at = Utc::now().timestamp_millis() - 1000;
        let started = self
            .client
            .start_message_move_task()
            .source_arn(&dlq.queue.arn)
            .destination_arn(&source.arn)
            .set_max_number_of_messages_per_second(rate.map(|r| r.clamp(1.0, 500.0) as i32))
            .send()
            .await;
        if let Err(err) = started {
            let why = crate::aws::error_chain(&err);
            tracing::warn!(error = %why, "no message move task; moving one by one");
            return Ok(MoveTask::Refused(why));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let tasks = self
                .client
                .list_message_move_tasks()
                .source_arn(&dlq.queue.arn)
                .max_results(10)
                .send()
                .await
                .aws("SQS ListMessageMoveTasks", &dlq.queue.name)?;
            // Ours: the newest started since we asked (an older, finished one may be listed).
            let ours = tasks
                .results()
                .iter()
                .filter(|t| t.started_timestamp() >= asked_at)
                .max_by_key(|t| t.started_timestamp());
            let Some(task) = ours else { continue };
            match task.status() {
                Some("COMPLETED") => {
                    return Ok(MoveTask::Done {
                        moved: task.approximate_number_of_messages_moved().max(0) as u64,
                        to_move: task
                            .approximate_number_of_messages_to_move()
                            .map(|n| n.max(0) as u64),
                    });
                }
                Some("FAILED") | Some("CANCELLED") => {
                    return Err(DlqError::MoveTask(format!(
                        "the message move task ended {}: {}",
                        task.status().unwrap_or_default(),
                        task.failure_reason().unwrap_or("no reason given")
                    )));
                }
                _ => {}
            }
        }
        Err(DlqError::MoveTask(
            "the message move task is still running after ten minutes; see `aws sqs list-message-move-tasks`".into(),
        ))
    }

    /// Sends `message` to `source` as it was first delivered: its body and its original
    /// attributes (without the failure annotations).
    async fn send_back(
        &self,
        message: &DeadLetterMessage,
        source: &QueueRef,
    ) -> Result<(), AwsError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&source.url)
            .message_body(&message.body);
        for (name, attribute) in message.original_attributes() {
            let mut value = MessageAttributeValue::builder().data_type(&attribute.data_type);
            value = match &attribute.binary {
                Some(bytes) => value.binary_value(aws_smithy_types::Blob::new(bytes.clone())),
                None => value.string_value(&attribute.value),
            };
            let value = value.build().map_err(|err| {
                AwsError::other("SQS SendMessage", &source.name, err.to_string(), false)
            })?;
            request = request.message_attributes(name, value);
        }
        if source.name.ends_with(".fifo") {
            request = request
                .message_group_id(
                    message
                        .group_id
                        .clone()
                        .unwrap_or_else(|| message.message_id.clone()),
                )
                .message_deduplication_id(format!("replay-{}", message.message_id));
        }
        request.send().await.aws("SQS SendMessage", &source.name)?;
        Ok(())
    }

    /// Deletes `message` from `queue`.
    async fn delete(&self, queue: &QueueRef, message: &DeadLetterMessage) -> Result<(), AwsError> {
        self.client
            .delete_message()
            .queue_url(&queue.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .aws("SQS DeleteMessage", &queue.name)?;
        Ok(())
    }

    /// Removes every visible message of `queue` (ten at a time) and returns what it removed.
    pub async fn purge(
        &self,
        queue: &QueueRef,
        hold: Duration,
    ) -> Result<Vec<DeadLetterMessage>, DlqError> {
        let mut removed = Vec::new();
        let mut reader = Reader::default();
        loop {
            let batch = self.receive(queue, hold, &mut reader).await?;
            if batch.is_empty() {
                return Ok(removed);
            }
            let entries: Result<Vec<_>, _> = batch
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(&m.receipt_handle)
                        .build()
                })
                .collect();
            let entries = entries.map_err(|err| {
                AwsError::other(
                    "SQS DeleteMessageBatch",
                    &queue.name,
                    err.to_string(),
                    false,
                )
            })?;
            let answer = self
                .client
                .delete_message_batch()
                .queue_url(&queue.url)
                .set_entries(Some(entries))
                .send()
                .await
                .aws("SQS DeleteMessageBatch", &queue.name)?;
            let failed: HashSet<&str> = answer.failed().iter().map(|f| f.id()).collect();
            removed.extend(
                batch
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !failed.contains(format!("m{i}").as_str()))
                    .map(|(_, m)| m),
            );
        }
    }
}

/// What a move task came to.
enum MoveTask {
    /// It ended: moved, of how many SQS counted at the start.
    Done { moved: u64, to_move: Option<u64> },
    /// The endpoint would not start one: why.
    Refused(String),
}

/// Messages seen so far in one read of a queue.
#[derive(Default)]
struct Reader {
    seen: HashSet<String>,
    empty: usize,
}

/// A queue that does not exist is the user's mistake, not an SQS failure.
fn unknown_or(err: AwsError, queue: &str) -> DlqError {
    if err.has_code("AWS.SimpleQueueService.NonExistentQueue") || err.has_code("QueueDoesNotExist")
    {
        DlqError::UnknownQueue(queue.to_owned())
    } else {
        DlqError::Aws(err)
    }
}

/// A received message, read.
fn read(message: &Message) -> DeadLetterMessage {
    let attributes: BTreeMap<String, Attribute> = message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .filter_map(|(name, value)| {
                    let binary = value.binary_value().map(|b| b.as_ref().to_vec());
                    let shown = match (&binary, value.string_value()) {
                        (_, Some(text)) => text.to_owned(),
                        (Some(bytes), None) => format!("({} bytes)", bytes.len()),
                        (None, None) => return None,
                    };
                    Some((
                        name.clone(),
                        Attribute {
                            data_type: value.data_type().to_owned(),
                            value: shown,
                            binary,
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let text = |name: &str| attributes.get(name).map(|a| a.value.clone());
    let system =
        |name: MessageSystemAttributeName| message.attributes().and_then(|a| a.get(&name)).cloned();
    let body = message.body().unwrap_or_default().to_owned();
    DeadLetterMessage {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        receipt_handle: message.receipt_handle().unwrap_or_default().to_owned(),
        error_kind: text("errorKind"),
        error_message: text("errorMessage"),
        source_queue: text("sourceQueue")
            .filter(|q| q.starts_with("arn:"))
            .or_else(|| system(MessageSystemAttributeName::DeadLetterQueueSourceArn)),
        consumer: text("consumer"),
        receive_count: text("receiveCount").and_then(|n| n.parse().ok()),
        dead_lettered_at: system(MessageSystemAttributeName::SentTimestamp)
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        group_id: system(MessageSystemAttributeName::MessageGroupId),
        event: EventSummary::of(&body),
        attributes,
        body,
    }
}
