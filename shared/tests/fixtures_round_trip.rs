//! Captured SQS events decode into the `aws_lambda_events` types, unwrap to the published
//! event, and serialize back to the same JSON.

// Test code: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::event::sqs::SqsEvent;
use orderflow::sns::{SqsBody, message_body};
use orderflow::{Event, EventType};
use serde_json::Value;

fn round_trip(text: &str) -> SqsEvent {
    let event: SqsEvent = serde_json::from_str(text).unwrap();
    let original: Value = serde_json::from_str(text).unwrap();
    let again: Value = serde_json::to_value(&event).unwrap();
    for (field, value) in original["Records"][0].as_object().unwrap() {
        assert_eq!(
            &again["Records"][0][field], value,
            "field {field} changed in the round trip"
        );
    }
    event
}

#[test]
fn sns_notification_in_sqs_round_trips_and_unwraps() {
    let event = round_trip(include_str!("fixtures/example-sqs-sns-notification.json"));
    let record = &event.records[0];
    let SqsBody::Notification(notification) = message_body(record.body.as_deref().unwrap()) else {
        panic!("the body is an SNS notification");
    };
    assert_eq!(
        notification.message_attributes["eventType"].value,
        "OrderPlaced"
    );
    assert_eq!(
        notification.message_attributes["eventVersion"].data_type,
        "Number"
    );
    let decoded = Event::decode(notification.message.as_bytes()).unwrap();
    assert_eq!(decoded.event_type(), EventType::OrderPlaced);
    assert_eq!(
        notification.message_attributes["correlationId"].value,
        decoded.correlation_id
    );
}

#[test]
fn raw_delivery_round_trips_with_attributes_on_the_sqs_message() {
    let event = round_trip(include_str!("fixtures/example-sqs-sns-raw.json"));
    let record = &event.records[0];
    let body = record.body.as_deref().unwrap();
    assert!(matches!(message_body(body), SqsBody::Raw(_)));
    let decoded = Event::decode(body.as_bytes()).unwrap();
    assert_eq!(
        record.message_attributes["eventType"]
            .string_value
            .as_deref(),
        Some("OrderPlaced")
    );
    assert_eq!(
        record.message_attributes["correlationId"]
            .string_value
            .as_deref(),
        Some(decoded.correlation_id.as_str())
    );
    assert_eq!(record.attributes["ApproximateReceiveCount"], "1");
}
