//! An outbox row as the orders table's stream delivers it: the stored event JSON, forwarded
//! byte for byte, and the attributes stored beside it.

use aws_lambda_events::event::dynamodb::EventRecord;
use orderflow::publish::EncodedEvent;
use serde_dynamo::AttributeValue;

/// A new outbox row.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// `pk` (`ORDER#<orderId>`).
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
fn stored(image: &serde_dynamo::Item, pk: &str, body: &str) -> Option<EncodedEvent> {
    Some(EncodedEvent {
        event_id: text(image, "eventId")?.parse().ok()?,
        event_type: text(image, "eventType")?.to_owned(),
        event_version: number(image, "eventVersion")?,
        correlation_id: text(image, "correlationId")?.to_owned(),
        aggregate_id: pk.strip_prefix("ORDER#")?.to_owned(),
        body: body.to_owned(),
    })
}

/// Reads one stream record.
pub fn outbox_record(record: &EventRecord) -> OutboxRecord {
    let keys = &record.change.keys;
    let (Some(pk), Some(sk)) = (text(keys, "pk"), text(keys, "sk")) else {
        return OutboxRecord::NotOutbox;
    };
    if record.event_name != "INSERT" || !sk.starts_with("OUTBOX#") {
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
    let event = match stored(image, pk, body) {
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
    use orderflow::event::examples;
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
    fn only_new_outbox_rows_are_relayed_with_their_stored_fields() {
        let event = examples::order_placed();
        let json = event.encode().unwrap();
        let full = json!({"event": {"S": json}, "eventId": {"S": event.event_id.to_string()},
            "eventType": {"S": "OrderPlaced"}, "eventVersion": {"N": "2"}, "correlationId": {"S": "corr-from-row"}});
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
