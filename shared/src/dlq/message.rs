//! One message in a DLQ, read: why it failed (the attributes the consumer set) and which event
//! it carries (read leniently: a malformed body is exactly what a DLQ holds).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sns::message_body;

/// The attributes the consumer adds when it dead-letters a record; a replay does not carry
/// them back to the source queue.
pub(super) const FAILURE_ATTRIBUTES: [&str; 6] = [
    "errorKind",
    "errorMessage",
    "sourceQueue",
    "originalMessageId",
    "consumer",
    "receiveCount",
];

/// The event a dead-lettered message carries, as far as its body can be read.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    /// `eventId`.
    pub event_id: String,
    /// `eventType`.
    pub event_type: String,
    /// `correlationId`, if present.
    pub correlation_id: Option<String>,
}

impl EventSummary {
    /// The envelope fields of `body` (an event, or an SNS notification of one), if it parses.
    pub fn of(body: &str) -> Option<Self> {
        let message = message_body(body).message()?.to_owned();
        let value: serde_json::Value = serde_json::from_str(&message).ok()?;
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        Some(EventSummary {
            event_id: text("eventId")?,
            event_type: text("eventType").unwrap_or_default(),
            correlation_id: text("correlationId"),
        })
    }
}

/// A message attribute: its data type and its value.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    /// `String`, `Number` or `Binary` (with a custom suffix, if any).
    pub data_type: String,
    /// The value as text; a binary value is shown as its length.
    pub value: String,
    /// A binary value's bytes, sent back as they were.
    #[serde(skip)]
    pub binary: Option<Vec<u8>>,
}

/// One message in a DLQ.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterMessage {
    /// The DLQ's message id.
    pub message_id: String,
    /// For deleting or releasing it; valid while this receive lasts.
    #[serde(skip)]
    pub receipt_handle: String,
    /// The body, unchanged.
    pub body: String,
    /// `errorKind`, if the consumer dead-lettered it (none when SQS's redrive moved it).
    pub error_kind: Option<String>,
    /// `errorMessage`.
    pub error_message: Option<String>,
    /// The ARN of the queue it came from: `sourceQueue` (the consumer set it aside), else
    /// SQS's `DeadLetterQueueSourceArn` (its redrive policy moved it).
    pub source_queue: Option<String>,
    /// `consumer`: the consumer that set it aside.
    pub consumer: Option<String>,
    /// Deliveries from the source queue before the consumer set it aside (`receiveCount`);
    /// `None` for a message SQS's redrive moved (it reached the redrive's `maxReceiveCount`).
    pub receive_count: Option<u32>,
    /// When it arrived in the DLQ (its first failure for good).
    pub dead_lettered_at: Option<DateTime<Utc>>,
    /// `MessageGroupId`, on a FIFO queue.
    pub group_id: Option<String>,
    /// Every message attribute, the failure ones included.
    pub attributes: BTreeMap<String, Attribute>,
    /// The event it carries, if the body can be read.
    pub event: Option<EventSummary>,
}

impl DeadLetterMessage {
    /// The attributes to send back to the source queue: the original ones, without the
    /// failure annotations.
    pub fn original_attributes(&self) -> impl Iterator<Item = (&String, &Attribute)> {
        self.attributes
            .iter()
            .filter(|(name, _)| !FAILURE_ATTRIBUTES.contains(&name.as_str()))
    }

    /// `errorKind`, or `(redriven)` for a message SQS moved without one.
    pub fn kind_label(&self) -> &str {
        self.error_kind.as_deref().unwrap_or("(redriven)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::examples;

    #[test]
    fn the_event_is_read_from_a_raw_body_or_a_notification_and_a_malformed_one_is_none() {
        let event = examples::order_placed();
        let raw = event.encode().unwrap();
        let wrapped = serde_json::json!({
            "Type": "Notification", "MessageId": "sns-1",
            "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": raw
        })
        .to_string();
        for body in [&raw, &wrapped] {
            let summary = EventSummary::of(body).unwrap();
            assert_eq!(summary.event_id, event.event_id.to_string());
            assert_eq!(summary.event_type, "OrderPlaced");
            assert_eq!(
                summary.correlation_id.as_deref(),
                Some(event.correlation_id.as_str())
            );
        }
        assert_eq!(EventSummary::of("{\"eventId\": oops"), None);
    }
}
