//! Older payload versions and how each is upcast to the current one.
//!
//! Compatibility rules (also in README):
//! - Adding an optional field is not a new version; readers ignore fields they do not know.
//! - Renaming, removing, retyping a field or adding a required one is a new version. The reader
//!   keeps a struct for every older version it accepts and an upcast to the current struct;
//!   writers always write the current version.
//! - Deploy readers before writers: a reader refuses versions newer than it knows
//!   (`EventError::UnsupportedVersion`) rather than guess.

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::payload::{
    EventPayload, InventoryOutOfStock, InventoryReserved, OrderCancelled, OrderConfirmed,
    OrderItem, OrderPlaced, PaymentFailed, PaymentProcessed,
};
use super::{EventError, EventType};

/// `OrderPlaced` v1, as the first order service wrote it: amounts were always US dollars and an
/// item's unit price was called `price`.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlacedV1 {
    /// The order's id.
    pub order_id: String,
    /// Who placed it.
    pub customer_id: String,
    /// What was ordered.
    pub items: Vec<OrderItemV1>,
    /// Order total in US dollars.
    pub total: Decimal,
}

/// An item of [`OrderPlacedV1`].
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemV1 {
    /// Stock keeping unit.
    pub sku: String,
    /// How many units.
    pub quantity: u32,
    /// Unit price in US dollars.
    pub price: Decimal,
}

impl From<OrderPlacedV1> for OrderPlaced {
    fn from(v1: OrderPlacedV1) -> Self {
        OrderPlaced {
            order_id: v1.order_id,
            customer_id: v1.customer_id,
            items: v1
                .items
                .into_iter()
                .map(|item| OrderItem {
                    sku: item.sku,
                    quantity: item.quantity,
                    unit_price: item.price,
                })
                .collect(),
            total: v1.total,
            currency: "USD".to_owned(),
            customer_email: None,
            shipping_address: None,
        }
    }
}

/// Decodes `data` written at `version` of `event_type` into the current payload struct.
pub(crate) fn decode_payload(
    event_type: EventType,
    version: u32,
    data: &RawValue,
) -> Result<EventPayload, EventError> {
    use EventType as T;
    match (event_type, version) {
        (T::OrderPlaced, 1) => {
            data_as::<OrderPlacedV1>(data).map(|v1| OrderPlaced::from(v1).into())
        }
        (T::OrderPlaced, 2) => data_as::<OrderPlaced>(data).map(Into::into),
        (T::PaymentProcessed, 1) => data_as::<PaymentProcessed>(data).map(Into::into),
        (T::PaymentFailed, 1) => data_as::<PaymentFailed>(data).map(Into::into),
        (T::InventoryReserved, 1) => data_as::<InventoryReserved>(data).map(Into::into),
        (T::InventoryOutOfStock, 1) => data_as::<InventoryOutOfStock>(data).map(Into::into),
        (T::OrderCancelled, 1) => data_as::<OrderCancelled>(data).map(Into::into),
        (T::OrderConfirmed, 1) => data_as::<OrderConfirmed>(data).map(Into::into),
        (event_type, version) => Err(EventError::UnsupportedVersion {
            event_type,
            version,
            known: event_type.known_versions(),
        }),
    }
}

/// `data` read as `T`; a payload that is not `T` is read again, tracking paths, to say which
/// field is wrong (only a broken event pays for that).
fn data_as<T: DeserializeOwned>(data: &RawValue) -> Result<T, EventError> {
    let json = data.get();
    if !json.starts_with('{') {
        return Err(EventError::invalid(
            "data",
            format!("must be an object, got {}", json_kind(json)),
        ));
    }
    serde_json::from_str(json).map_err(|first| {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
            Err(err) => EventError::from_serde(err, "data"),
            Ok(_) => EventError::from_json(first, "data".into()),
        }
    })
}

/// What kind of JSON value `json` (valid JSON, as a raw value is) holds, from its first byte.
fn json_kind(json: &str) -> &'static str {
    match json.bytes().next() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(value: serde_json::Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).unwrap()
    }

    #[test]
    fn every_known_version_has_a_decoder() {
        // GIVEN a data document that no payload accepts, every known (type, version) pair must
        // reach a struct decoder (a field error), never the "unsupported version" arm.
        for t in EventType::all() {
            for v in t.known_versions() {
                let err = decode_payload(t, v, &raw(json!({}))).unwrap_err();
                assert!(
                    matches!(err, EventError::MissingField { .. }),
                    "{t} v{v}: {err}"
                );
            }
            let newer = t.current_version() + 1;
            assert!(matches!(
                decode_payload(t, newer, &raw(json!({}))),
                Err(EventError::UnsupportedVersion { .. })
            ));
            assert!(matches!(
                decode_payload(t, 0, &raw(json!({}))),
                Err(EventError::UnsupportedVersion { .. })
            ));
        }
    }

    #[test]
    fn order_placed_v1_upcasts_to_usd_and_unit_price() {
        let data = json!({
            "orderId": "ord-1", "customerId": "c-1", "total": "20.00",
            "items": [{"sku": "SKU-1", "quantity": 2, "price": "10.00"}]
        });
        let EventPayload::OrderPlaced(order) =
            decode_payload(EventType::OrderPlaced, 1, &raw(data)).unwrap()
        else {
            panic!("wrong payload type");
        };
        assert_eq!(order.currency, "USD");
        assert_eq!(order.items[0].unit_price, Decimal::new(1000, 2));
        assert_eq!(order.customer_email, None);
    }

    #[test]
    fn data_must_be_an_object() {
        let err = decode_payload(EventType::OrderCancelled, 1, &raw(json!([1]))).unwrap_err();
        assert_eq!(
            err,
            EventError::invalid("data", "must be an object, got an array")
        );
    }
}
