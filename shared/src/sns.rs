//! SNS notifications as SQS delivers them.
//!
//! A subscription without raw message delivery wraps each message in a JSON notification
//! (`Type`, `MessageId`, `TopicArn`, `Message`, `MessageAttributes`, …); with raw delivery the
//! SQS body is the message itself. [`message_body`] accepts both.

use std::borrow::Cow;
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
    match classify(body, |n: &Notification| n.kind.as_str()) {
        Ok(notification) => SqsBody::Notification(notification),
        Err(Some(control)) => SqsBody::Control(control),
        Err(None) => SqsBody::Raw(body),
    }
}

/// `body` as a notification `N` (if it parses as one and `kind` says `Notification`), else as a
/// control message (`Err(Some)`), else raw (`Err(None)`).
fn classify<'a, N: Deserialize<'a>>(
    body: &'a str,
    kind: impl Fn(&N) -> &str,
) -> Result<N, Option<ControlMessage>> {
    // Every SNS document has a `"Type"` key; a raw event without one skips both parse attempts.
    // memchr's search, not `str::contains`: 0.5 k fewer instructions a notification (make bench).
    if memchr::memmem::find(body.as_bytes(), b"\"Type\"").is_none() {
        return Err(None);
    }
    if let Ok(notification) = serde_json::from_str::<N>(body)
        && kind(&notification) == "Notification"
    {
        return Ok(notification);
    }
    match serde_json::from_str::<ControlMessage>(body) {
        Ok(control) if CONTROL_TYPES.contains(&control.kind.as_str()) => Err(Some(control)),
        _ => Err(None),
    }
}

/// What the consumer reads of a notification: the same required fields as [`Notification`],
/// borrowed from the body unless an escape forced a copy; attributes, timestamp and signature
/// are skipped, not copied (`make bench`: a third of the unwrapping's cost).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NotificationRef<'a> {
    #[serde(rename = "Type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) message_id: Cow<'a, str>,
    #[serde(borrow)]
    #[allow(dead_code)] // Required, as in `Notification`, so both tell the same bodies apart.
    topic_arn: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) message: Cow<'a, str>,
}

/// An SQS body as the consumer reads it: [`message_body`]'s answer without copying what it does
/// not need.
pub(crate) enum Unwrapped<'a> {
    /// An SNS notification.
    Notification(NotificationRef<'a>),
    /// An SNS subscription or unsubscription confirmation.
    Control(ControlMessage),
    /// The message itself.
    Raw(&'a str),
}

/// [`message_body`] for the consumer's hot path.
pub(crate) fn unwrap(body: &str) -> Unwrapped<'_> {
    match classify(body, |n: &NotificationRef<'_>| n.kind.as_ref()) {
        Ok(notification) => Unwrapped::Notification(notification),
        Err(Some(control)) => Unwrapped::Control(control),
        Err(None) => Unwrapped::Raw(body),
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
        let Unwrapped::Notification(lean) = unwrap(body) else {
            panic!("the consumer's reading does not unwrap it")
        };
        assert_eq!((&*lean.message_id, &*lean.message), ("m-1", r#"{"a":1}"#));
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
