//! What the relay asks of the world besides SNS: the outbox rows (marked sent, failed attempts
//! counted) and a place for rows it gives up on.

use crate::aws::{AwsError, AwsResultExt};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_sqs::types::MessageAttributeValue;

use super::row::{OutboxRow, PendingRow, ROW_PREFIX, Status, pending_row};
use crate::publish::Publisher;

/// The outbox rows of the orders table.
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync {
    /// Marks the row sent. Best effort: the stream has already moved on.
    async fn mark_sent(&self, row: &OutboxRow) -> Result<(), AwsError>;
    /// Counts a failed attempt to publish the row and remembers why; returns the attempts so
    /// far.
    async fn record_failed_attempt(&self, row: &OutboxRow, reason: &str) -> Result<u32, AwsError>;
}

/// Why a row was set aside, for whoever reads the failure queue.
#[derive(Clone, Debug, PartialEq)]
pub struct SetAside {
    /// `pk`, `sk` of the row.
    pub key: (String, String),
    /// The stored event JSON (or the row, when it holds none).
    pub body: String,
    /// A short stable name: `PublishRejected`, `PublishFailed`, `HeldBack`, `OutboxRowUnreadable`.
    pub kind: &'static str,
    /// The error, naming what failed.
    pub message: String,
    /// The event's id and type, when the row holds an event.
    pub event: Option<(String, String)>,
    /// Attempts made.
    pub attempts: u32,
    /// The stream record's sequence number.
    pub sequence_number: Option<String>,
}

/// Where rows the relay gives up on go (the on-failure queue).
#[async_trait::async_trait]
pub trait FailureSink: Send + Sync {
    /// Sends `row` aside; an error means it was not, and the record must be retried.
    async fn set_aside(&self, row: &SetAside) -> Result<(), AwsError>;
}

/// Outbox rows in the orders table: `status` becomes `SENT`, and `expiration` (the table's TTL)
/// removes the row a week later.
#[derive(Clone, Debug)]
pub struct DynamoOutboxStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoOutboxStore {
    /// Over the orders table.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoOutboxStore {
            client,
            table: table.into(),
        }
    }
}

impl DynamoOutboxStore {
    /// Every outbox row still `PENDING` (one Scan, page by page), oldest event first.
    pub async fn pending(&self) -> Result<Vec<PendingRow>, AwsError> {
        let mut rows = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(sk, :outbox) AND #status = :pending")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":outbox", AttributeValue::S(ROW_PREFIX.into()))
                .expression_attribute_values(
                    ":pending",
                    AttributeValue::S(Status::Pending.as_str().into()),
                )
                .set_exclusive_start_key(start)
                .send()
                .await
                .aws("DynamoDB Scan", &self.table)?;
            for item in page.items() {
                let item: serde_dynamo::Item = item.clone().into();
                rows.extend(pending_row(&item));
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        // Oldest first; rows whose event has no readable time last.
        rows.sort_by_key(|r| (r.occurred_at.is_none(), r.occurred_at));
        Ok(rows)
    }

    /// Publishes `rows` again, their stored JSON unchanged (so with their original event ids:
    /// consumers skip what they already did), and marks each one published `SENT`. Returns per
    /// row the error, if it was not published or not marked.
    pub async fn republish(
        &self,
        publisher: &Publisher,
        rows: &[PendingRow],
    ) -> Vec<Result<(), String>> {
        let encoded: Vec<_> = rows.iter().map(|r| r.row.event.clone()).collect();
        let report = publisher.publish_encoded(&encoded).await;
        let mut results = Vec::with_capacity(rows.len());
        for (row, published) in rows.iter().zip(&report.results) {
            results.push(match published {
                Ok(_) => self
                    .mark_sent(&row.row)
                    .await
                    .map_err(|err| format!("published, not marked sent: {err}")),
                Err(err) => Err(err.to_string()),
            });
        }
        results
    }
}

const SENT_ROWS_KEPT_SECONDS: i64 = 7 * 24 * 3600;
const UPDATE: &str = "DynamoDB UpdateItem";

#[async_trait::async_trait]
impl OutboxStore for DynamoOutboxStore {
    async fn mark_sent(&self, row: &OutboxRow) -> Result<(), AwsError> {
        let now = chrono::Utc::now();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(row.pk.clone()))
            .key("sk", AttributeValue::S(row.sk.clone()))
            .update_expression("SET #status = :sent, sentAt = :now, expiration = :expiration")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", AttributeValue::S(Status::Sent.as_str().into()))
            .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()))
            .expression_attribute_values(
                ":expiration",
                AttributeValue::N((now.timestamp() + SENT_ROWS_KEPT_SECONDS).to_string()),
            )
            .send()
            .await
            .aws(UPDATE, &self.table)?;
        Ok(())
    }

    async fn record_failed_attempt(&self, row: &OutboxRow, reason: &str) -> Result<u32, AwsError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(row.pk.clone()))
            .key("sk", AttributeValue::S(row.sk.clone()))
            .update_expression("ADD publishAttempts :one SET lastPublishError = :reason")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":reason", AttributeValue::S(reason.to_owned()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .aws(UPDATE, &self.table)?;
        let attempts = out
            .attributes()
            .and_then(|a| a.get("publishAttempts"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                AwsError::other(UPDATE, &self.table, "no publishAttempts returned", true)
            })?;
        Ok(attempts)
    }
}

/// The relay's on-failure SQS queue.
#[derive(Clone, Debug)]
pub struct SqsFailureSink {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsFailureSink {
    /// Sends to `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsFailureSink {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait::async_trait]
impl FailureSink for SqsFailureSink {
    async fn set_aside(&self, row: &SetAside) -> Result<(), AwsError> {
        const SEND: &str = "SQS SendMessage";
        let text = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|err| AwsError::other(SEND, &self.queue_url, err.to_string(), false))
        };
        let message = crate::error::error_message_attribute(&row.message);
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&row.body)
            .message_attributes("errorKind", text(row.kind)?)
            .message_attributes("errorMessage", text(message)?)
            .message_attributes("outboxKey", text(&format!("{}|{}", row.key.0, row.key.1))?)
            .message_attributes("attempts", text(&row.attempts.to_string())?)
            .message_attributes("consumer", text("outbox-relay")?);
        if let Some((event_id, event_type)) = &row.event {
            request = request
                .message_attributes("eventId", text(event_id)?)
                .message_attributes("eventType", text(event_type)?);
        }
        if let Some(sequence) = &row.sequence_number {
            request = request.message_attributes("sequenceNumber", text(sequence)?);
        }
        request.send().await.aws(SEND, &self.queue_url)?;
        Ok(())
    }
}
