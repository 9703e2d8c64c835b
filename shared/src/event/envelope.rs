//! The envelope every event travels in, and the only ways in (`decode`, and `decode_str` for
//! text) and out (`encode`).

use std::borrow::Cow;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::payload::EventPayload;
use super::{EventError, EventType, MAX_MESSAGE_BYTES, validate, versions};

/// A valid event of any type: envelope metadata plus its typed payload.
///
/// `eventType` and `eventVersion` are not stored: they follow from the payload, so an event can
/// never claim one type and carry another's data. Build one with [`Event::new`] (a new fact) or
/// [`Event::caused_by`] (a fact that follows from another event).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Unique id of this event; consumers deduplicate on it.
    pub event_id: Uuid,
    /// When the fact happened (UTC, millisecond precision).
    pub occurred_at: DateTime<Utc>,
    /// The order this event is about; equals the payload's `orderId`.
    pub aggregate_id: String,
    /// Shared by every event of one business flow (one order's saga).
    pub correlation_id: String,
    /// The `eventId` of the event that caused this one; `None` for the first event of a flow.
    pub causation_id: Option<String>,
    /// The publishing service, e.g. `"orders"`.
    pub source: String,
    /// The typed payload.
    pub payload: EventPayload,
}

/// UUID v5 namespace of follow-up event ids (a fixed random UUID: it only has to be ours).
const FOLLOW_UP_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7266_4c6f_9a1e_0b5c_3d2f_7e41);

/// The envelope as written on the wire.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireOut<'a> {
    event_id: Uuid,
    event_type: EventType,
    event_version: u32,
    occurred_at: &'a DateTime<Utc>,
    aggregate_id: &'a str,
    correlation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<&'a str>,
    source: &'a str,
    data: &'a EventPayload,
}

/// The envelope as read from the wire: `data` stays raw until type and version are known.
/// Unknown fields are ignored, so writers may add optional fields without a new version.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireIn<'a> {
    event_id: Uuid,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    event_version: u32,
    occurred_at: DateTime<Utc>,
    aggregate_id: String,
    correlation_id: String,
    #[serde(default)]
    causation_id: Option<String>,
    source: String,
    /// Read once its type and version say what it is: into that version's struct directly,
    /// without a `serde_json::Value` in between. Borrowed from the input, not copied.
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

impl Event {
    /// A new fact that starts a flow: fresh id, now, and its own id as correlation id.
    pub fn new(source: impl Into<String>, payload: impl Into<EventPayload>) -> Self {
        let payload = payload.into();
        let event_id = Uuid::new_v4();
        Event {
            event_id,
            occurred_at: Utc::now().trunc_subsecs(3),
            aggregate_id: payload.order_id().to_owned(),
            correlation_id: event_id.to_string(),
            causation_id: None,
            source: source.into(),
            payload,
        }
    }

    /// A fact that follows from `cause`: it carries the cause's correlation id and names the
    /// cause's `eventId` as its causation id.
    pub fn caused_by(
        cause: &Event,
        source: impl Into<String>,
        payload: impl Into<EventPayload>,
    ) -> Self {
        Event {
            correlation_id: cause.correlation_id.clone(),
            causation_id: Some(cause.event_id.to_string()),
            ..Event::new(source, payload)
        }
    }

    /// A fact that `producer` derives from `cause`, with a *deterministic* id: the same cause,
    /// producer, event type and `ordinal` always give the same `eventId`.
    ///
    /// A consumer that runs again on a redelivered cause (after a crash, say) therefore
    /// re-publishes the same event rather than a new one, and downstream idempotency absorbs it.
    pub fn follow_up(
        cause: &Event,
        producer: &str,
        payload: impl Into<EventPayload>,
        ordinal: usize,
    ) -> Self {
        let payload = payload.into();
        let name = format!(
            "{}/{producer}/{}/{ordinal}",
            cause.event_id,
            payload.event_type()
        );
        Event {
            event_id: Uuid::new_v5(&FOLLOW_UP_NAMESPACE, name.as_bytes()),
            ..Event::caused_by(cause, producer, payload)
        }
    }

    /// The event's type, from its payload.
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }

    /// The version this event is written at: always the current one for its type.
    pub fn event_version(&self) -> u32 {
        self.event_type().current_version()
    }

    /// Reads and validates one event from JSON bytes.
    ///
    /// Checks, in order: size (SNS's 256 KiB), JSON syntax, the envelope fields, `eventType`,
    /// `eventVersion` (older known versions are upcast to the current payload), the payload's
    /// fields, then the business rules. Unknown extra fields are ignored.
    ///
    /// ```
    /// use orderflow::{Event, EventError, EventType};
    ///
    /// let json = orderflow::event::examples::order_placed().encode()?;
    /// let event = Event::decode(json.as_bytes())?;
    /// assert_eq!(event.event_type(), EventType::OrderPlaced);
    ///
    /// let unknown = json.replace("\"OrderPlaced\"", "\"OrderShipped\"");
    /// let err = Event::decode(unknown.as_bytes()).unwrap_err();
    /// assert!(err.to_string().contains("OrderShipped"), "{err}");
    /// assert!(Event::decode(b"{not json").is_err());
    /// # Ok::<(), EventError>(())
    /// ```
    pub fn decode(input: &[u8]) -> Result<Self, EventError> {
        Self::fits(input)?;
        // The fast path; only a broken event is read again, tracking paths, to say where.
        match serde_json::from_slice::<WireIn<'_>>(input) {
            Ok(wire) => Self::from_wire(wire),
            Err(first) => Err(Self::explain(input, first)),
        }
    }

    /// [`Event::decode`] for text, such as an SQS body: the same checks and errors, without
    /// checking again that every string in it is UTF-8 (a `&str` is): 2.3 k of the 27 k
    /// instructions reading an `OrderPlaced` took (`orderflow-bench`, per record).
    ///
    /// ```
    /// use orderflow::{Event, EventError};
    ///
    /// let json = orderflow::event::examples::order_placed().encode()?;
    /// assert_eq!(Event::decode_str(&json)?, Event::decode(json.as_bytes())?);
    /// assert!(Event::decode_str("{not json").is_err());
    /// # Ok::<(), EventError>(())
    /// ```
    pub fn decode_str(input: &str) -> Result<Self, EventError> {
        Self::fits(input.as_bytes())?;
        match serde_json::from_str::<WireIn<'_>>(input) {
            Ok(wire) => Self::from_wire(wire),
            Err(first) => Err(Self::explain(input.as_bytes(), first)),
        }
    }

    /// Refuses an input larger than SNS and SQS carry, before reading any of it.
    fn fits(input: &[u8]) -> Result<(), EventError> {
        if input.len() > MAX_MESSAGE_BYTES {
            return Err(EventError::TooLarge {
                size: input.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        Ok(())
    }

    /// Why `input` is not an envelope, with the JSON path of the field at fault.
    fn explain(input: &[u8], first: serde_json::Error) -> EventError {
        let mut deserializer = serde_json::Deserializer::from_slice(input);
        match serde_path_to_error::deserialize::<_, WireIn<'_>>(&mut deserializer) {
            Err(err) => EventError::from_serde(err, ""),
            // Trailing bytes after the document are as malformed as a missing brace.
            Ok(_) => match deserializer.end() {
                Err(err) => EventError::from_json(err, String::new()),
                Ok(()) => EventError::from_json(first, String::new()),
            },
        }
    }

    /// Reads and validates one event from an already-parsed JSON value (e.g. one element of an
    /// array); the same checks as [`Event::decode`].
    pub fn from_value(value: serde_json::Value) -> Result<Self, EventError> {
        let json =
            serde_json::to_vec(&value).map_err(|err| EventError::from_json(err, String::new()))?;
        Self::decode(&json)
    }

    fn from_wire(wire: WireIn<'_>) -> Result<Self, EventError> {
        let event_type = wire
            .event_type
            .parse::<EventType>()
            .map_err(|_| EventError::UnknownEventType(wire.event_type.into_owned()))?;
        let payload = versions::decode_payload(event_type, wire.event_version, wire.data)?;
        let event = Event {
            event_id: wire.event_id,
            occurred_at: wire.occurred_at,
            aggregate_id: wire.aggregate_id,
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
            source: wire.source,
            payload,
        };
        event.validate()?;
        Ok(event)
    }

    /// Checks the envelope and payload rules; [`Event::decode`] and [`Event::encode`] call it.
    /// Returns the first problem; [`Event::problems`] lists them all.
    pub fn validate(&self) -> Result<(), EventError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every rule the event breaks, in field order (empty when valid): what an API returns as
    /// field errors.
    pub fn problems(&self) -> Vec<EventError> {
        let mut problems = validate::Problems::default();
        problems.non_empty(&self.aggregate_id, "aggregateId");
        problems.non_empty(&self.correlation_id, "correlationId");
        problems.non_empty(&self.source, "source");
        if let Some(causation_id) = &self.causation_id {
            problems.non_empty(causation_id, "causationId");
        }
        if self.aggregate_id != self.payload.order_id() {
            problems.0.push(EventError::invalid(
                "aggregateId",
                format!(
                    "is `{}` but data.orderId is `{}`",
                    self.aggregate_id,
                    self.payload.order_id()
                ),
            ));
        }
        problems.payload(&self.payload, "data");
        problems.0
    }

    /// Validates and serializes the event as the JSON document published to SNS.
    ///
    /// Fails, without producing anything, if the event breaks a rule or is larger than one SNS
    /// message may be.
    pub fn encode(&self) -> Result<String, EventError> {
        self.validate()?;
        let json = serde_json::to_string(self)
            .map_err(|err| EventError::invalid("", format!("cannot be serialized: {err}")))?;
        if json.len() > MAX_MESSAGE_BYTES {
            return Err(EventError::TooLarge {
                size: json.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        Ok(json)
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            event_id: self.event_id,
            event_type: self.event_type(),
            event_version: self.event_version(),
            occurred_at: &self.occurred_at,
            aggregate_id: &self.aggregate_id,
            correlation_id: &self.correlation_id,
            causation_id: self.causation_id.as_deref(),
            source: &self.source,
            data: &self.payload,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::examples;
    use serde_json::{Value, json};

    fn order_json() -> Value {
        serde_json::to_value(examples::order_placed()).unwrap()
    }

    /// Decodes `value` from bytes and from text, which must agree, error for error.
    fn decode_value(value: &Value) -> Result<Event, EventError> {
        let json = serde_json::to_string(value).unwrap();
        let from_bytes = Event::decode(json.as_bytes());
        assert_eq!(Event::decode_str(&json), from_bytes, "{json}");
        from_bytes
    }

    #[test]
    fn every_example_round_trips() {
        for t in EventType::all() {
            let event = examples::example(t);
            let json = event.encode().unwrap();
            assert_eq!(Event::decode(json.as_bytes()).unwrap(), event, "{t}");
            assert_eq!(
                Event::from_value(serde_json::from_str(&json).unwrap()).unwrap(),
                event
            );
        }
    }

    #[test]
    fn wire_format_is_camel_case_with_type_and_version() {
        let json = order_json();
        assert_eq!(json["eventType"], "OrderPlaced");
        assert_eq!(json["eventVersion"], 2);
        assert!(json["occurredAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(json["data"]["items"][0]["unitPrice"], "12.50");
        assert!(json.get("causationId").is_none());
    }

    #[test]
    fn caused_by_carries_correlation_and_causation() {
        let placed = examples::order_placed();
        let cancelled = examples::example(EventType::OrderCancelled);
        let follow_up = Event::caused_by(&placed, "payment", cancelled.payload);
        assert_eq!(follow_up.correlation_id, placed.correlation_id);
        assert_eq!(follow_up.causation_id, Some(placed.event_id.to_string()));
        assert_ne!(follow_up.event_id, placed.event_id);
    }

    #[test]
    fn follow_up_ids_are_deterministic_per_cause_producer_type_and_ordinal() {
        let placed = examples::order_placed();
        let payload = || examples::example(EventType::PaymentFailed).payload;
        let first = Event::follow_up(&placed, "payment", payload(), 0);
        assert_eq!(
            first.event_id,
            Event::follow_up(&placed, "payment", payload(), 0).event_id
        );
        assert_ne!(
            first.event_id,
            Event::follow_up(&placed, "payment", payload(), 1).event_id
        );
        assert_ne!(
            first.event_id,
            Event::follow_up(&placed, "inventory", payload(), 0).event_id
        );
        assert_ne!(
            first.event_id,
            Event::follow_up(&examples::order_placed(), "payment", payload(), 0).event_id
        );
        assert_eq!(first.causation_id, Some(placed.event_id.to_string()));
        assert_eq!(first.correlation_id, placed.correlation_id);
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = Event::decode(b"{\n  \"eventId\": ,\n}").unwrap_err();
        assert!(
            matches!(err, EventError::MalformedJson { line: 2, .. }),
            "{err}"
        );
        let err = Event::decode(b"").unwrap_err();
        assert!(matches!(err, EventError::MalformedJson { .. }), "{err}");
        let mut trailing = serde_json::to_vec(&order_json()).unwrap();
        trailing.extend_from_slice(b" {}");
        assert!(matches!(
            Event::decode(&trailing),
            Err(EventError::MalformedJson { .. })
        ));
        for text in [
            "{\n  \"eventId\": ,\n}",
            "",
            std::str::from_utf8(&trailing).unwrap(),
        ] {
            assert_eq!(Event::decode_str(text), Event::decode(text.as_bytes()));
        }
    }

    #[test]
    fn an_escaped_event_type_is_read_as_written() {
        let json = order_json()
            .to_string()
            .replace("\"OrderPlaced\"", "\"Order\\u0050laced\"");
        assert!(json.contains("\\u0050"), "{json}");
        assert_eq!(
            Event::decode_str(&json).unwrap().event_type(),
            EventType::OrderPlaced
        );
    }

    #[test]
    fn missing_fields_are_named_by_path() {
        let mut json = order_json();
        json.as_object_mut().unwrap().remove("correlationId");
        assert_eq!(
            decode_value(&json).unwrap_err(),
            EventError::MissingField {
                field: "correlationId".into()
            }
        );

        let mut json = order_json();
        json["data"]["items"][0]
            .as_object_mut()
            .unwrap()
            .remove("sku");
        assert_eq!(
            decode_value(&json).unwrap_err(),
            EventError::MissingField {
                field: "data.items[0].sku".into()
            }
        );

        let mut json = order_json();
        json["data"]["customerId"] = Value::Null;
        assert_eq!(
            decode_value(&json).unwrap_err(),
            EventError::MissingField {
                field: "data.customerId".into()
            }
        );
    }

    #[test]
    fn wrong_types_are_named_by_path() {
        let mut json = order_json();
        json["data"]["items"][0]["quantity"] = json!("two");
        let err = decode_value(&json).unwrap_err();
        assert!(
            matches!(&err, EventError::InvalidField { field, .. } if field == "data.items[0].quantity"),
            "{err}"
        );
        let mut json = order_json();
        json["eventId"] = json!("not-a-uuid");
        assert!(
            matches!(decode_value(&json), Err(EventError::InvalidField { field, .. }) if field == "eventId")
        );
        let mut json = order_json();
        json["occurredAt"] = json!("yesterday");
        assert!(
            matches!(decode_value(&json), Err(EventError::InvalidField { field, .. }) if field == "occurredAt")
        );
    }

    #[test]
    fn unknown_type_and_version_are_refused() {
        let mut json = order_json();
        json["eventType"] = json!("OrderShipped");
        assert_eq!(
            decode_value(&json).unwrap_err(),
            EventError::UnknownEventType("OrderShipped".into())
        );
        let mut json = order_json();
        json["eventVersion"] = json!(3);
        let err = decode_value(&json).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported eventVersion 3 for OrderPlaced: this reader knows versions 1..=2"
        );
    }

    #[test]
    fn business_rules_are_enforced() {
        let cases = [
            ("/data/items", json!([]), "data.items"),
            ("/data/items/0/quantity", json!(0), "data.items[0].quantity"),
            (
                "/data/items/0/unitPrice",
                json!("-1.00"),
                "data.items[0].unitPrice",
            ),
            ("/data/total", json!("1.00"), "data.total"),
            ("/data/currency", json!("euro"), "data.currency"),
            ("/data/customerEmail", json!("nobody"), "data.customerEmail"),
            ("/aggregateId", json!("ord-other"), "aggregateId"),
            ("/source", json!("  "), "source"),
        ];
        for (pointer, value, field) in cases {
            let mut json = order_json();
            *json.pointer_mut(pointer).unwrap() = value;
            match decode_value(&json) {
                Err(EventError::InvalidField { field: got, .. }) => {
                    assert_eq!(got, field, "{pointer}")
                }
                other => panic!("{pointer}: expected InvalidField, got {other:?}"),
            }
        }
    }

    #[test]
    fn problems_lists_every_broken_rule() {
        let mut json = order_json();
        json["data"]["items"][0]["quantity"] = json!(0);
        json["data"]["currency"] = json!("eur");
        json["data"]["customerEmail"] = json!("nobody");
        let event = Event {
            payload: match decode_value(&order_json()).unwrap().payload {
                EventPayload::OrderPlaced(mut order) => {
                    order.items[0].quantity = 0;
                    order.currency = "eur".into();
                    order.customer_email = Some("nobody".into());
                    EventPayload::OrderPlaced(order)
                }
                other => other,
            },
            ..decode_value(&order_json()).unwrap()
        };
        let fields: Vec<String> = event
            .problems()
            .into_iter()
            .map(|p| match p {
                EventError::InvalidField { field, .. } => field,
                other => other.to_string(),
            })
            .collect();
        assert_eq!(
            fields,
            [
                "data.items[0].quantity",
                "data.total",
                "data.currency",
                "data.customerEmail"
            ]
        );
        assert_eq!(
            decode_value(&json).unwrap_err(),
            event.validate().unwrap_err()
        );
    }

    #[test]
    fn total_mismatch_says_what_the_items_add_up_to() {
        let mut json = order_json();
        json["data"]["total"] = json!("99.00");
        assert_eq!(
            decode_value(&json).unwrap_err().to_string(),
            "invalid field `data.total`: is 99.00 but the items add up to 40.48"
        );
    }

    #[test]
    fn unknown_extra_fields_are_ignored() {
        let base = order_json();
        let mut json = base.clone();
        json["traceHeader"] = json!("Root=1-abc");
        json["data"]["giftWrap"] = json!(true);
        json["data"]["items"][0]["colour"] = json!("red");
        assert_eq!(decode_value(&json).unwrap(), decode_value(&base).unwrap());
    }

    #[test]
    fn numbers_are_accepted_for_amounts() {
        // The schema asks for decimal strings; a lenient reader also takes JSON numbers.
        let mut json = order_json();
        json["data"]["items"][0]["unitPrice"] = json!(12.5);
        json["data"]["items"][1]["unitPrice"] = json!(15.48);
        json["data"]["total"] = json!(40.48);
        assert!(decode_value(&json).is_ok());
    }

    #[test]
    fn oversize_events_are_refused_both_ways() {
        let mut event = examples::order_placed();
        let EventPayload::OrderPlaced(order) = &mut event.payload else {
            unreachable!()
        };
        order.customer_id = "x".repeat(MAX_MESSAGE_BYTES);
        assert!(matches!(event.encode(), Err(EventError::TooLarge { .. })));
        let bytes = serde_json::to_vec(&event).unwrap();
        assert!(
            matches!(Event::decode(&bytes), Err(EventError::TooLarge { size, .. }) if size == bytes.len())
        );
        assert_eq!(
            Event::decode_str(std::str::from_utf8(&bytes).unwrap()),
            Event::decode(&bytes)
        );
    }

    #[test]
    fn older_version_decodes_to_current_struct() {
        let v1 = json!({
            "eventId": "0b8f2f7e-8f7e-4c55-9a51-8d6a3f7c1a10", "eventType": "OrderPlaced",
            "eventVersion": 1, "occurredAt": "2024-03-01T09:30:00Z", "aggregateId": "ord-7",
            "correlationId": "corr-7", "source": "legacy-shop",
            "data": {"orderId": "ord-7", "customerId": "c-7", "total": "7.00",
                     "items": [{"sku": "SKU-7", "quantity": 1, "price": "7.00"}]}
        });
        let event = decode_value(&v1).unwrap();
        assert_eq!(event.event_version(), 2);
        let reencoded: Value = serde_json::from_str(&event.encode().unwrap()).unwrap();
        assert_eq!(reencoded["data"]["currency"], "USD");
        assert_eq!(reencoded["data"]["items"][0]["unitPrice"], "7.00");
    }
}
