//! One event made ready for SNS: body, message attributes, FIFO ids, and its size.

use std::collections::HashMap;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde::Deserialize;
use uuid::Uuid;

use super::PublishError;
use crate::event::{Event, EventError, MAX_MESSAGE_BYTES};

/// An event as it travels: its JSON exactly, and the envelope fields SNS needs for message
/// attributes and FIFO ids. The publisher sends `body` byte for byte.
///
/// [`EncodedEvent::encode`] makes one from an [`Event`] (validated). The outbox relay reads one
/// back from a stored row with [`EncodedEvent::from_json`], which reads only the envelope, so
/// a row written by a newer writer (an optional field this code does not know, a later
/// `eventVersion`) is forwarded exactly as it was written.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct EncodedEvent {
    /// `eventId`.
    pub event_id: Uuid,
    /// `eventType`, as written.
    pub event_type: String,
    /// `eventVersion`, as written.
    pub event_version: u32,
    /// `correlationId`.
    pub correlation_id: String,
    /// `aggregateId`: the FIFO message group.
    pub aggregate_id: String,
    /// The whole JSON document.
    pub body: String,
}

/// The envelope fields of an encoded event; nothing else is read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    event_id: Uuid,
    event_type: String,
    event_version: u32,
    correlation_id: String,
    aggregate_id: String,
}

impl EncodedEvent {
    /// Validates and encodes `event`.
    pub fn encode(event: &Event) -> Result<Self, EventError> {
        Ok(EncodedEvent {
            event_id: event.event_id,
            event_type: event.event_type().as_str().to_owned(),
            event_version: event.event_version(),
            correlation_id: event.correlation_id.clone(),
            aggregate_id: event.aggregate_id.clone(),
            body: event.encode()?,
        })
    }

    /// Reads the envelope of an encoded event, leaving `body` exactly as it is. Refuses a
    /// document that is not JSON or lacks an envelope field; the payload is not judged (a newer
    /// writer's event is forwarded, not refused). Size is the publisher's check: it refuses an
    /// event over SNS's limit as `Invalid`, never sending it.
    pub fn from_json(body: String) -> Result<Self, EventError> {
        let mut deserializer = serde_json::Deserializer::from_str(&body);
        let header: Header = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| EventError::from_serde(err, ""))?;
        for (field, value) in [
            ("eventType", &header.event_type),
            ("correlationId", &header.correlation_id),
            ("aggregateId", &header.aggregate_id),
        ] {
            if value.trim().is_empty() {
                return Err(EventError::invalid(field, "must not be empty"));
            }
        }
        Ok(EncodedEvent {
            event_id: header.event_id,
            event_type: header.event_type,
            event_version: header.event_version,
            correlation_id: header.correlation_id,
            aggregate_id: header.aggregate_id,
            body,
        })
    }
}

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
    /// Makes `event` ready for SNS; refuses it if body plus attributes exceed SNS's limit.
    pub(crate) fn new(
        index: usize,
        event: &EncodedEvent,
        fifo: bool,
    ) -> Result<Self, PublishError> {
        let entry = PreparedEntry {
            index,
            event_id: event.event_id,
            body: event.body.clone(),
            attributes: vec![
                (ATTR_EVENT_TYPE, "String", event.event_type.clone()),
                (
                    ATTR_EVENT_VERSION,
                    "Number",
                    event.event_version.to_string(),
                ),
                (ATTR_CORRELATION_ID, "String", event.correlation_id.clone()),
            ],
            group_id: fifo.then(|| event.aggregate_id.clone()),
            dedup_id: fifo.then(|| event.event_id.to_string()),
        };
        let size = entry.size();
        if size > MAX_MESSAGE_BYTES {
            return Err(PublishError::Invalid {
                event_id: event.event_id,
                source: EventError::TooLarge {
                    size,
                    limit: MAX_MESSAGE_BYTES,
                },
            });
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
