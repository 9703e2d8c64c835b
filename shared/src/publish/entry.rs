//! One event made ready for SNS: body, message attributes, FIFO ids, and its size.

use std::collections::HashMap;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use uuid::Uuid;

use super::PublishError;
use crate::event::{Event, EventError, MAX_MESSAGE_BYTES};

/// Name of the message attribute holding `eventType`; subscriptions filter on it.
pub const ATTR_EVENT_TYPE: &str = "eventType";
/// Name of the message attribute holding `eventVersion` (a `Number`).
pub const ATTR_EVENT_VERSION: &str = "eventVersion";
/// Name of the message attribute holding `correlationId`.
pub const ATTR_CORRELATION_ID: &str = "correlationId";

/// An encoded event and everything SNS needs to publish it.
#[derive(Clone, Debug)]
pub(crate) struct PreparedEntry {
    /// Position in the caller's input, reported back.
    pub(crate) index: usize,
    pub(crate) event_id: Uuid,
    pub(crate) body: String,
    /// (name, data type, value)
    pub(crate) attributes: Vec<(&'static str, &'static str, String)>,
    /// FIFO topics only: `aggregateId`, so one order's events stay in order.
    pub(crate) group_id: Option<String>,
    /// FIFO topics only: `eventId`, so a re-publish within 5 minutes is dropped by SNS.
    pub(crate) dedup_id: Option<String>,
}

impl PreparedEntry {
    /// Validates and encodes `event`; refuses it if body plus attributes exceed SNS's limit.
    pub(crate) fn new(index: usize, event: &Event, fifo: bool) -> Result<Self, PublishError> {
        let invalid = |source| PublishError::Invalid {
            event_id: event.event_id,
            source,
        };
        let body = event.encode().map_err(invalid)?;
        let entry = PreparedEntry {
            index,
            event_id: event.event_id,
            body,
            attributes: vec![
                (
                    ATTR_EVENT_TYPE,
                    "String",
                    event.event_type().as_str().to_owned(),
                ),
                (
                    ATTR_EVENT_VERSION,
                    "Number",
                    event.event_version().to_string(),
                ),
                (ATTR_CORRELATION_ID, "String", event.correlation_id.clone()),
            ],
            group_id: fifo.then(|| event.aggregate_id.clone()),
            dedup_id: fifo.then(|| event.event_id.to_string()),
        };
        let size = entry.size();
        if size > MAX_MESSAGE_BYTES {
            return Err(invalid(EventError::TooLarge {
                size,
                limit: MAX_MESSAGE_BYTES,
            }));
        }
        Ok(entry)
    }

    /// Bytes SNS counts against its 256 KiB limits: the body plus every attribute's name,
    /// data type and value.
    pub(crate) fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(name, data_type, value)| name.len() + data_type.len() + value.len())
                .sum::<usize>()
    }

    pub(crate) fn message_attributes(&self) -> HashMap<String, MessageAttributeValue> {
        self.attributes
            .iter()
            .filter_map(|(name, data_type, value)| {
                // build() only fails without a data type, which every entry here has.
                let value = MessageAttributeValue::builder()
                    .data_type(*data_type)
                    .string_value(value)
                    .build()
                    .ok()?;
                Some(((*name).to_owned(), value))
            })
            .collect()
    }

    /// The PublishBatch entry, identified in the request by its input position.
    pub(crate) fn batch_entry(&self) -> Result<PublishBatchRequestEntry, String> {
        PublishBatchRequestEntry::builder()
            .id(self.batch_id())
            .message(&self.body)
            .set_message_attributes(Some(self.message_attributes()))
            .set_message_group_id(self.group_id.clone())
            .set_message_deduplication_id(self.dedup_id.clone())
            .build()
            .map_err(|err| err.to_string())
    }

    /// Unique within a request (SNS requires it); the input position, not the eventId, so two
    /// copies of one event in the input do not collide.
    pub(crate) fn batch_id(&self) -> String {
        format!("e{}", self.index)
    }
}
