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

/// An SNS message that is about the subscription, not a published message: what SNS sends
/// to a queue whose subscription still needs confirming, or was removed.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ControlMessage {
    /// `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The topic.
    pub topic_arn: String,
    /// Where to confirm the subscription.
    #[serde(default, rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
}

/// The `Type`s of SNS control messages.
const CONTROL_TYPES: [&str; 2] = ["SubscriptionConfirmation", "UnsubscribeConfirmation"];

/// What an SQS body turned out to hold.
#[derive(Clone, Debug, PartialEq)]
pub enum SqsBody<'a> {
    /// An SNS notification wrapping the message.
    Notification(Notification),
    /// An SNS subscription or unsubscription confirmation: no event at all.
    Control(ControlMessage),
    /// The message itself (raw delivery, or sent to SQS directly).
    Raw(&'a str),
}

impl SqsBody<'_> {
    /// The published message: the notification's `Message`, or the raw body (`None` for a
    /// control message, which carries none).
    pub fn message(&self) -> Option<&str> {
        match self {
            SqsBody::Notification(n) => Some(&n.message),
            SqsBody::Control(_) => None,
            SqsBody::Raw(body) => Some(body),
        }
    }
}

/// Tells an SNS notification or control message from a raw message.
///
/// A body is a notification only if it parses as one *and* says `"Type": "Notification"`, and
/// a control message only if it says one of the control types and names its topic; anything
/// else (including invalid JSON) is raw and left to the event decoder to judge.
///
/// ```
/// use orderflow::sns::{SqsBody, message_body};
///
/// let wrapped = r#"{"Type": "Notification", "MessageId": "m-1",
///     "TopicArn": "arn:aws:sns:us-east-1:123456789012:events", "Message": "{\"eventId\": 1}",
///     "Timestamp": "2026-12-03T10:00:00.000Z"}"#;
/// assert!(matches!(message_body(wrapped), SqsBody::Notification(_)));
/// assert_eq!(message_body(wrapped).message(), Some("{\"eventId\": 1}"));
/// assert_eq!(message_body("{\"eventId\": 1}").message(), Some("{\"eventId\": 1}"));
/// ```
pub fn message_body(body: &str) -> SqsBody<'_> {
    // Every SNS document has a `"Type"` key; a raw event without one skips both parse attempts.
    if !body.contains("\"Type\"") {
        return SqsBody::Raw(body);
    }
    if let Ok(notification) = serde_json::from_str::<Notification>(body)
        && notification.kind == "Notification"
    {
        return SqsBody::Notification(notification);
    }
    match serde_json::from_str::<ControlMessage>(body) {
        Ok(control) if CONTROL_TYPES.contains(&control.kind.as_str()) => SqsBody::Control(control),
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
    fn subscription_messages_are_control_messages() {
        let body = r#"{"Type":"SubscriptionConfirmation","MessageId":"m-2","Token":"t",
            "TopicArn":"arn:aws:sns:us-east-1:123456789012:t","Message":"You have chosen to subscribe",
            "SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription","Timestamp":"2026-11-23T10:00:00.000Z"}"#;
        let SqsBody::Control(control) = message_body(body) else {
            panic!("not recognised")
        };
        assert_eq!(control.kind, "SubscriptionConfirmation");
        assert_eq!(control.topic_arn, "arn:aws:sns:us-east-1:123456789012:t");
        assert!(message_body(body).message().is_none());
        let unsubscribe = body.replace("SubscriptionConfirmation", "UnsubscribeConfirmation");
        assert!(
            matches!(message_body(&unsubscribe), SqsBody::Control(c) if c.kind == "UnsubscribeConfirmation")
        );
    }

    #[test]
    fn anything_else_is_raw() {
        for body in [
            r#"{"eventId":"x"}"#,
            "not json",
            r#"{"Type":"SubscriptionConfirmation"}"#,
            r#"{"Type":"Other","TopicArn":"arn:aws:sns:us-east-1:1:t"}"#,
        ] {
            assert_eq!(message_body(body), SqsBody::Raw(body));
        }
    }
}
