//! SNS notifications as SQS delivers them.
//!
//! A subscription without raw message delivery wraps each message in a JSON notification
//! (`Type`, `MessageId`, `TopicArn`, `Message`, `MessageAttributes`, …); with raw delivery the
//! SQS body is the message itself. [`message_body`] accepts both.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The JSON notification SNS puts in an SQS message body when raw delivery is off.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Notification {
    /// Always `"Notification"` for published messages.
    #[serde(rename = "Type")]
    pub kind: String,
    /// SNS's id of the published message.
    pub message_id: String,
    /// The topic it was published to.
    pub topic_arn: String,
    /// The published message, verbatim.
    pub message: String,
    /// When SNS accepted it (ISO 8601).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// The subject, if the publisher set one.
    #[serde(default)]
    pub subject: Option<String>,
    /// The message attributes, by name.
    #[serde(default)]
    pub message_attributes: BTreeMap<String, NotificationAttribute>,
}

/// One message attribute inside a [`Notification`].
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NotificationAttribute {
    /// `String`, `Number` or `Binary` (with optional custom suffix).
    #[serde(rename = "Type")]
    pub data_type: String,
    /// The value as text (base64 for binary).
    pub value: String,
}

/// What an SQS body turned out to hold.
#[derive(Clone, Debug, PartialEq)]
pub enum SqsBody<'a> {
    /// An SNS notification wrapping the message.
    Notification(Notification),
    /// The message itself (raw delivery, or sent to SQS directly).
    Raw(&'a str),
}

impl SqsBody<'_> {
    /// The published message: the notification's `Message`, or the raw body.
    pub fn message(&self) -> &str {
        match self {
            SqsBody::Notification(n) => &n.message,
            SqsBody::Raw(body) => body,
        }
    }
}

/// Tells an SNS notification from a raw message.
///
/// A body is a notification only if it parses as one *and* says `"Type": "Notification"`;
/// anything else (including invalid JSON) is raw and left to the event decoder to judge.
pub fn message_body(body: &str) -> SqsBody<'_> {
    match serde_json::from_str::<Notification>(body) {
        Ok(notification) if notification.kind == "Notification" => {
            SqsBody::Notification(notification)
        }
        _ => SqsBody::Raw(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_a_notification() {
        let body = r#"{"Type":"Notification","MessageId":"m-1","TopicArn":"arn:aws:sns:us-east-1:123456789012:t",
            "Message":"{\"a\":1}","Timestamp":"2026-11-23T10:00:00.000Z","SignatureVersion":"1",
            "MessageAttributes":{"eventType":{"Type":"String","Value":"OrderPlaced"}}}"#;
        let SqsBody::Notification(n) = message_body(body) else {
            panic!("not unwrapped")
        };
        assert_eq!(n.message, r#"{"a":1}"#);
        assert_eq!(n.message_attributes["eventType"].value, "OrderPlaced");
    }

    #[test]
    fn anything_else_is_raw() {
        for body in [
            r#"{"eventId":"x"}"#,
            "not json",
            r#"{"Type":"SubscriptionConfirmation"}"#,
        ] {
            assert_eq!(message_body(body), SqsBody::Raw(body));
        }
    }
}
