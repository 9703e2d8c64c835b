//! Building the Lambda `SqsEvent` that an SQS event source mapping would deliver: from messages
//! received with the SDK ([`from_received`], for tests against an emulator), or from events
//! ([`raw`], [`bodies_as_records`], for a consumer's unit tests).

use crate::event::{Event, EventError};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::Message;
use serde_json::{Map, Value, json};

/// The event Lambda would deliver for `messages` received from the queue `queue_arn` in
/// `region` (receive them with `message_system_attribute_names(All)` and
/// `message_attribute_names("All")`, as the event source mapping does).
pub fn from_received(
    messages: &[Message],
    queue_arn: &str,
    region: &str,
) -> Result<SqsEvent, serde_json::Error> {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                .collect();
            let message_attributes: Map<String, Value> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(name, v)| {
                    let value = json!({
                        "dataType": v.data_type(),
                        "stringValue": v.string_value(),
                        "binaryValue": v.binary_value().map(|b| aws_smithy_types::base64::encode(b.as_ref())),
                        "stringListValues": [],
                        "binaryListValues": [],
                    });
                    (name.clone(), value)
                })
                .collect();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "md5OfBody": m.md5_of_body(),
                "md5OfMessageAttributes": m.md5_of_message_attributes(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

/// The event Lambda would deliver for `events` sent to the queue `queue_arn` by raw delivery,
/// one record each, first attempt (message ids `m0`, `m1`, …). Fails only if an event cannot
/// be encoded (see [`Event::encode`]).
pub fn raw(events: &[Event], queue_arn: &str) -> Result<SqsEvent, EventError> {
    let bodies = events
        .iter()
        .map(Event::encode)
        .collect::<Result<Vec<String>, EventError>>()?;
    Ok(bodies_as_records(&bodies, queue_arn))
}

/// The event Lambda would deliver for message `bodies` (anything, valid events or not) sent to
/// the queue `queue_arn`, one record each, first attempt (message ids `m0`, `m1`, …).
pub fn bodies_as_records(bodies: &[impl AsRef<str>], queue_arn: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.receipt_handle = Some(format!("rh{i}"));
            record.body = Some(body.as_ref().to_owned());
            record
                .attributes
                .insert("ApproximateReceiveCount".to_owned(), "1".to_owned());
            record.event_source = Some("aws:sqs".to_owned());
            record.event_source_arn = Some(queue_arn.to_owned());
            record.aws_region = Some("us-east-1".to_owned());
            record
        })
        .collect();
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};

    #[test]
    fn builds_the_lambda_shape() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .attributes(MessageSystemAttributeName::MessageGroupId, "ord-1")
            .message_attributes(
                "eventType",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("OrderPlaced")
                    .build()
                    .unwrap(),
            )
            .build();
        let event = from_received(
            &[message],
            "arn:aws:sqs:us-east-1:123456789012:q.fifo",
            "us-east-1",
        )
        .unwrap();
        let record = &event.records[0];
        assert_eq!(record.message_id.as_deref(), Some("m-1"));
        assert_eq!(record.attributes["ApproximateReceiveCount"], "3");
        assert_eq!(record.attributes["MessageGroupId"], "ord-1");
        assert_eq!(
            record.message_attributes["eventType"]
                .string_value
                .as_deref(),
            Some("OrderPlaced")
        );
        assert_eq!(
            record.event_source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:q.fifo")
        );
    }
}
