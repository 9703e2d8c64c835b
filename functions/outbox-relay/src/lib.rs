//! The outbox relay: reads new `OUTBOX#` rows from the orders table's DynamoDB stream,
//! publishes their events to SNS with PublishBatch, and marks them sent.
//!
//! At least once, never lost: if an event cannot be published, the response names the first
//! failed record's sequence number, and Lambda retries the stream from there (events after it
//! that did go out are published again; their ids are the same, so consumers' idempotency
//! absorbs them). A row that holds no valid event blocks the shard until the event source's
//! retry limit sends it to the on-failure destination, rather than being skipped and lost.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use orderflow::env::{EnvError, FromVars, Vars};
use orderflow::{Event, Publisher};
use tracing::{error, info, warn};

/// The function's configuration, from the environment the template sets.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Config {
    /// `ORDERS_TABLE`: where the outbox rows are marked sent.
    pub orders_table: String,
    /// `EVENTS_TOPIC_ARN`: where events are published.
    pub events_topic_arn: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Self, EnvError> {
        Ok(Config {
            orders_table: vars.required("ORDERS_TABLE")?,
            events_topic_arn: vars.required(orderflow::env::vars::EVENTS_TOPIC_ARN)?,
        })
    }
}

/// Marks outbox rows as published.
#[async_trait::async_trait]
pub trait OutboxMarker: Send + Sync {
    /// Marks the row of `event` sent. Best effort: the stream has already moved on.
    async fn mark_sent(&self, event: &Event) -> Result<(), String>;
}

/// Outbox rows in the orders table: `status` becomes `SENT`, and `expiration` (the table's TTL)
/// removes the row a week later.
#[derive(Clone, Debug)]
pub struct DynamoOutboxMarker {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoOutboxMarker {
    /// Over the orders table.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoOutboxMarker {
            client,
            table: table.into(),
        }
    }
}

const SENT_ROWS_KEPT_SECONDS: i64 = 7 * 24 * 3600;

#[async_trait::async_trait]
impl OutboxMarker for DynamoOutboxMarker {
    async fn mark_sent(&self, event: &Event) -> Result<(), String> {
        let now = chrono::Utc::now();
        self.client
            .update_item()
            .table_name(&self.table)
            .key(
                "pk",
                AttributeValue::S(format!("ORDER#{}", event.aggregate_id)),
            )
            .key(
                "sk",
                AttributeValue::S(format!("OUTBOX#{}", event.event_id)),
            )
            .update_expression("SET #status = :sent, sentAt = :now, expiration = :expiration")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", AttributeValue::S("SENT".into()))
            .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()))
            .expression_attribute_values(
                ":expiration",
                AttributeValue::N((now.timestamp() + SENT_ROWS_KEPT_SECONDS).to_string()),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|err| orderflow::aws::error_chain(&err))
    }
}

/// What a stream record holds for the relay.
#[derive(Debug, PartialEq)]
pub enum OutboxRecord {
    /// Not a new outbox row (an order, a history entry, a status update): nothing to do.
    NotOutbox,
    /// A new outbox row and its event.
    Event(Box<Event>),
    /// A new outbox row without a valid event.
    Unreadable(String),
}

/// Reads one stream record.
pub fn outbox_record(record: &EventRecord) -> OutboxRecord {
    let is_outbox = record.change.keys.get("sk").is_some_and(
        |sk| matches!(sk, serde_dynamo::AttributeValue::S(s) if s.starts_with("OUTBOX#")),
    );
    if record.event_name != "INSERT" || !is_outbox {
        return OutboxRecord::NotOutbox;
    }
    match record.change.new_image.get("event") {
        Some(serde_dynamo::AttributeValue::S(json)) => match Event::decode(json.as_bytes()) {
            Ok(event) => OutboxRecord::Event(Box::new(event)),
            Err(err) => {
                OutboxRecord::Unreadable(format!("outbox row holds an invalid event: {err}"))
            }
        },
        _ => OutboxRecord::Unreadable(
            "outbox row has no `event` attribute (is the stream NEW_IMAGE?)".into(),
        ),
    }
}

/// Publishes outbox events.
pub struct Relay {
    publisher: Publisher,
    marker: Arc<dyn OutboxMarker>,
}

/// The relay as the Lambda runs it.
pub fn relay(sdk: &aws_config::SdkConfig, config: Config) -> Relay {
    Relay::new(
        Publisher::new(aws_sdk_sns::Client::new(sdk), config.events_topic_arn),
        Arc::new(DynamoOutboxMarker::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.orders_table,
        )),
    )
}

impl Relay {
    /// A relay publishing with `publisher` and marking with `marker`.
    pub fn new(publisher: Publisher, marker: Arc<dyn OutboxMarker>) -> Self {
        Relay { publisher, marker }
    }

    /// One batch of stream records: publish every outbox event; report the first failure.
    pub async fn handle(&self, batch: &StreamEvent) -> DynamoDbEventResponse {
        let mut first_failure: Option<usize> = None;
        let mut events = Vec::new();
        let mut positions = Vec::new();
        for (i, record) in batch.records.iter().enumerate() {
            match outbox_record(record) {
                OutboxRecord::NotOutbox => {}
                OutboxRecord::Event(event) => {
                    events.push(*event);
                    positions.push(i);
                }
                OutboxRecord::Unreadable(reason) => {
                    error!(event_id = %record.event_id, %reason, "unreadable outbox row");
                    first_failure = first_failure.or(Some(i));
                }
            }
        }
        let report = self.publisher.publish_batch(&events).await;
        for ((event, result), position) in events.iter().zip(&report.results).zip(&positions) {
            match result {
                Ok(published) => {
                    info!(event_id = %event.event_id, event_type = %event.event_type(), message_id = %published.message_id, "outbox event published");
                    if let Err(err) = self.marker.mark_sent(event).await {
                        warn!(event_id = %event.event_id, error = %err, "published but not marked sent");
                    }
                }
                Err(err) => {
                    error!(event_id = %event.event_id, error = %err, "outbox event not published; the stream will retry");
                    first_failure = Some(first_failure.map_or(*position, |f| f.min(*position)));
                }
            }
        }
        let mut response = DynamoDbEventResponse::default();
        if let Some(i) = first_failure {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = batch.records[i].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow::event::examples;
    use serde_json::json;

    fn record(event_name: &str, sk: &str, event: Option<&str>) -> EventRecord {
        let mut new_image = json!({"pk": {"S": "ORDER#ord-1"}, "sk": {"S": sk}});
        if let Some(event) = event {
            new_image["event"] = json!({"S": event});
        }
        serde_json::from_value(json!({
            "eventID": "e1", "eventName": event_name, "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": {"S": "ORDER#ord-1"}, "sk": {"S": sk}}, "NewImage": new_image,
                         "SequenceNumber": "100", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"}
        }))
        .unwrap()
    }

    #[test]
    fn only_new_outbox_rows_with_valid_events_are_relayed() {
        let event = examples::order_placed();
        let json = event.encode().unwrap();
        assert_eq!(
            outbox_record(&record("INSERT", "OUTBOX#x", Some(&json))),
            OutboxRecord::Event(Box::new(event))
        );
        assert_eq!(
            outbox_record(&record("MODIFY", "OUTBOX#x", Some(&json))),
            OutboxRecord::NotOutbox,
            "marking sent is a MODIFY"
        );
        assert_eq!(
            outbox_record(&record("INSERT", "ORDER", None)),
            OutboxRecord::NotOutbox
        );
        assert_eq!(
            outbox_record(&record("INSERT", "HISTORY#2026", None)),
            OutboxRecord::NotOutbox
        );
        assert!(matches!(
            outbox_record(&record("INSERT", "OUTBOX#x", Some("{}"))),
            OutboxRecord::Unreadable(_)
        ));
        assert!(matches!(
            outbox_record(&record("INSERT", "OUTBOX#x", None)),
            OutboxRecord::Unreadable(_)
        ));
    }
}
