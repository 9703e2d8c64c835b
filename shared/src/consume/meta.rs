//! What SQS says about a record, read once from its system attributes.

use aws_lambda_events::event::sqs::SqsMessage;
use chrono::{DateTime, Utc};

use super::RecordMeta;

/// Message attribute of a copy the consumer sent back to its queue to wait for its cause:
/// when the wait started (epoch milliseconds).
pub(crate) const WAITING_SINCE: &str = "orderflowWaitingSince";
/// Message attribute of such a copy: how often earlier copies were received.
pub(crate) const EARLIER_RECEIVES: &str = "orderflowEarlierReceives";

impl RecordMeta {
    /// The record's metadata; `sns_message_id` when it came through SNS.
    pub(super) fn of(record: &SqsMessage, sns_message_id: Option<String>) -> Self {
        let attribute = |name: &str| record.attributes.get(name);
        RecordMeta {
            message_id: record.message_id.clone().unwrap_or_default(),
            receive_count: attribute("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            sent_at: attribute("SentTimestamp")
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(DateTime::<Utc>::from_timestamp_millis),
            group_id: attribute("MessageGroupId").cloned(),
            queue_arn: record.event_source_arn.clone(),
            sns_message_id,
            trace_header: attribute("AWSTraceHeader").cloned(),
            waiting_since: message_attribute(record, WAITING_SINCE)
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(DateTime::<Utc>::from_timestamp_millis),
            earlier_receives: message_attribute(record, EARLIER_RECEIVES)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        }
    }
}

/// A message attribute's string value (String and Number attributes).
fn message_attribute<'a>(record: &'a SqsMessage, name: &str) -> Option<&'a str> {
    record
        .message_attributes
        .get(name)
        .and_then(|value| value.string_value.as_deref())
}
