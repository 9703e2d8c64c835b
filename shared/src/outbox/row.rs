//! The outbox row format, for both sides: the item a writer puts in its transaction, and the
//! row as its table's stream delivers it to the relay (the stored event JSON, forwarded byte for
//! byte, and the attributes stored beside it).

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use serde_dynamo::AttributeValue;

use crate::event::{Event, EventError};
use crate::publish::EncodedEvent;

/// The sort key of every outbox row starts with this, then the event id.
pub(crate) const ROW_PREFIX: &str = "OUTBOX#";

/// Where an outbox row stands.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Status {
    /// Written, not yet published (or set aside, to be published again).
    Pending,
    /// Published.
    Sent,
}

impl Status {
    /// As stored in `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Sent => "SENT",
        }
    }
}

/// The outbox row of `event`, to put in the same transaction as the change it records: `pk`
/// is the writer's partition key (the aggregate's item collection), `sk` is
/// `OUTBOX#<eventId>`; the exact event JSON, the envelope fields the message attributes come
/// from, and `PENDING`.
pub fn row_item(
    pk: &str,
    event: &Event,
) -> Result<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, EventError> {
    use aws_sdk_dynamodb::types::AttributeValue as Value;
    let text = |value: String| Value::S(value);
    Ok(HashMap::from([
        ("pk".into(), text(pk.to_owned())),
        ("sk".into(), text(format!("{ROW_PREFIX}{}", event.event_id))),
        ("eventId".into(), text(event.event_id.to_string())),
        (
            "eventType".into(),
            text(event.event_type().as_str().to_owned()),
        ),
        (
            "eventVersion".into(),
            Value::N(event.event_version().to_string()),
        ),
        ("aggregateId".into(), text(event.aggregate_id.clone())),
        ("correlationId".into(), text(event.correlation_id.clone())),
        ("event".into(), text(event.encode()?)),
        ("status".into(), text(Status::Pending.as_str().to_owned())),
    ]))
}

/// A new outbox row.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// `pk`: the writer's partition key.
    pub pk: String,
    /// `sk` (`OUTBOX#<eventId>`).
    pub sk: String,
    /// The event to publish, exactly as stored.
    pub event: EncodedEvent,
}

/// What a stream record holds for the relay.
#[derive(Debug, PartialEq)]
pub enum OutboxRecord {
    /// Not a new outbox row (an order, a history entry, a status update): nothing to do.
    NotOutbox,
    /// A new outbox row.
    Row(Box<OutboxRow>),
    /// A new outbox row that cannot be published as it is.
    Unreadable {
        /// `pk`, `sk`.
        key: (String, String),
        /// What is wrong.
        reason: String,
        /// The row's new image, as JSON, for whoever looks at it.
        image: String,
    },
}

fn text<'a>(image: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match image.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn number(image: &serde_dynamo::Item, name: &str) -> Option<u32> {
    match image.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// The row's stored envelope fields, when the writer stored them all (rows written before
/// they were stored are read from the JSON instead).
fn stored(image: &serde_dynamo::Item, body: &str) -> Option<EncodedEvent> {
    Some(EncodedEvent {
        event_id: text(image, "eventId")?.parse().ok()?,
        event_type: text(image, "eventType")?.to_owned(),
        event_version: number(image, "eventVersion")?,
        correlation_id: text(image, "correlationId")?.to_owned(),
        aggregate_id: text(image, "aggregateId")?.to_owned(),
        body: body.to_owned(),
    })
}

/// A row still `PENDING` in the table: not published yet, or set aside by the relay.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingRow {
    /// The row, its event as stored.
    pub row: OutboxRow,
    /// The event's `occurredAt`, if its JSON says.
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Failed attempts the relay counted (`publishAttempts`).
    pub attempts: u32,
    /// The relay's last error (`lastPublishError`).
    pub last_error: Option<String>,
}

/// A scanned item as a pending row: `None` unless it is an outbox row whose status is
/// `PENDING` and whose event can be read.
pub(super) fn pending_row(item: &serde_dynamo::Item) -> Option<PendingRow> {
    let (pk, sk) = (text(item, "pk")?, text(item, "sk")?);
    if !sk.starts_with(ROW_PREFIX) || text(item, "status") != Some(Status::Pending.as_str()) {
        return None;
    }
    let body = text(item, "event")?;
    let event = stored(item, body).or_else(|| EncodedEvent::from_json(body.to_owned()).ok())?;
    let occurred_at = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("occurredAt")?.as_str()?.parse().ok());
    Some(PendingRow {
        row: OutboxRow {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
            event,
        },
        occurred_at,
        attempts: number(item, "publishAttempts").unwrap_or(0),
        last_error: text(item, "lastPublishError").map(str::to_owned),
    })
}

/// Reads one stream record.
pub fn outbox_record(record: &EventRecord) -> OutboxRecord {
    let keys = &record.change.keys;
    let (Some(pk), Some(sk)) = (text(keys, "pk"), text(keys, "sk")) else {
        return OutboxRecord::NotOutbox;
    };
    if record.event_name != "INSERT" || !sk.starts_with(ROW_PREFIX) {
        return OutboxRecord::NotOutbox;
    }
    let image = &record.change.new_image;
    let unreadable = |reason: String| OutboxRecord::Unreadable {
        key: (pk.to_owned(), sk.to_owned()),
        reason,
        image: serde_json::to_string(image).unwrap_or_default(),
    };
    let Some(body) = text(image, "event") else {
        return unreadable("outbox row has no `event` attribute (is the stream NEW_IMAGE?)".into());
    };
    let event = match stored(image, body) {
        Some(event) => event,
        None => match EncodedEvent::from_json(body.to_owned()) {
            Ok(event) => event,
            Err(err) => return unreadable(format!("outbox row holds no event envelope: {err}")),
        },
    };
    OutboxRecord::Row(Box::new(OutboxRow {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        event,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::examples;
    use serde_json::json;

    pub(crate) fn record(event_name: &str, sk: &str, image: serde_json::Value) -> EventRecord {
        let mut new_image = json!({"pk": {"S": "ORDER#ord-1001"}, "sk": {"S": sk}});
        for (k, v) in image.as_object().unwrap() {
            new_image[k] = v.clone();
        }
        serde_json::from_value(json!({
            "eventID": "e1", "eventName": event_name, "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": {"S": "ORDER#ord-1001"}, "sk": {"S": sk}}, "NewImage": new_image,
                         "SequenceNumber": "100", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"}
        }))
        .unwrap()
    }

    #[test]
    fn a_row_written_by_row_item_reads_back_as_the_same_event_byte_for_byte() {
        let event = examples::order_placed();
        let item = row_item(&format!("ORDER#{}", event.aggregate_id), &event).unwrap();
        assert_eq!(item["status"].as_s().unwrap(), Status::Pending.as_str());
        let image: serde_dynamo::Item = item.clone().into();
        let keys: serde_dynamo::Item = HashMap::from([
            ("pk".to_owned(), item["pk"].clone()),
            ("sk".to_owned(), item["sk"].clone()),
        ])
        .into();
        let mut stream_record = record("INSERT", "unused", json!({}));
        stream_record.change.keys = keys;
        stream_record.change.new_image = image;
        let OutboxRecord::Row(row) = outbox_record(&stream_record) else {
            panic!("not relayed")
        };
        assert_eq!(row.sk, format!("{ROW_PREFIX}{}", event.event_id));
        assert_eq!(row.event.body, event.encode().unwrap());
        assert_eq!(row.event.event_id, event.event_id);
        assert_eq!(row.event.event_type, event.event_type().as_str());
        assert_eq!(row.event.event_version, event.event_version());
        assert_eq!(row.event.aggregate_id, event.aggregate_id);
        assert_eq!(row.event.correlation_id, event.correlation_id);
    }

    #[test]
    fn only_new_outbox_rows_are_relayed_with_their_stored_fields() {
        let event = examples::order_placed();
        let json = event.encode().unwrap();
        let full = json!({"event": {"S": json}, "eventId": {"S": event.event_id.to_string()},
            "eventType": {"S": "OrderPlaced"}, "eventVersion": {"N": "2"}, "aggregateId": {"S": "ord-1001"},
            "correlationId": {"S": "corr-from-row"}});
        let OutboxRecord::Row(row) = outbox_record(&record("INSERT", "OUTBOX#x", full.clone()))
        else {
            panic!("not relayed")
        };
        assert_eq!(row.event.body, json, "the stored JSON, unchanged");
        assert_eq!(
            row.event.correlation_id, "corr-from-row",
            "attributes from the row"
        );
        assert_eq!(row.event.aggregate_id, "ord-1001");
        assert_eq!(
            outbox_record(&record("MODIFY", "OUTBOX#x", full)),
            OutboxRecord::NotOutbox,
            "marking sent is a MODIFY"
        );
        assert_eq!(
            outbox_record(&record("INSERT", "ORDER", json!({}))),
            OutboxRecord::NotOutbox
        );
        // An older row without the stored fields: read from the JSON's envelope.
        let OutboxRecord::Row(row) =
            outbox_record(&record("INSERT", "OUTBOX#x", json!({"event": {"S": json}})))
        else {
            panic!("not relayed")
        };
        assert_eq!(row.event.correlation_id, event.correlation_id);
        for image in [json!({"event": {"S": "{}"}}), json!({})] {
            assert!(matches!(
                outbox_record(&record("INSERT", "OUTBOX#x", image)),
                OutboxRecord::Unreadable { .. }
            ));
        }
    }
}
