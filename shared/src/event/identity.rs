//! What makes two deliveries of one `eventId` the same event: the payload's *required* fields,
//! in canonical form.
//!
//! The compatibility rules fix a type's required fields per version, while optional fields may
//! be added at any time without a new version. So the identity leaves optional fields out (a
//! reader that learned about one after a deploy still sees the same event), writes decimals
//! normalized (`12.5` and `"12.50"` are one amount), and is taken after upcasting (a v1 event
//! and its v2 re-publication are one event).

use rust_decimal::Decimal;

use super::payload::{EventPayload, OrderItem};

/// Receives each identity field: its path (`items[].sku`) and canonical value, in order.
pub(crate) trait IdentitySink {
    /// One field.
    fn field(&mut self, path: &'static str, value: &str);
}

fn decimal(sink: &mut impl IdentitySink, path: &'static str, value: Decimal) {
    sink.field(path, &value.normalize().to_string());
}

fn count(sink: &mut impl IdentitySink, path: &'static str, value: u32) {
    sink.field(path, &value.to_string());
}

fn items(sink: &mut impl IdentitySink, items: &[OrderItem]) {
    count(sink, "items[]", items.len() as u32);
    for item in items {
        sink.field("items[].sku", &item.sku);
        count(sink, "items[].quantity", item.quantity);
        decimal(sink, "items[].unitPrice", item.unit_price);
    }
}

/// Feeds `sink` the event type and the payload's required fields, canonical, in a fixed order.
pub(crate) fn visit(payload: &EventPayload, sink: &mut impl IdentitySink) {
    sink.field("eventType", payload.event_type().as_str());
    match payload {
        EventPayload::OrderPlaced(p) => {
            sink.field("orderId", &p.order_id);
            sink.field("customerId", &p.customer_id);
            items(sink, &p.items);
            decimal(sink, "total", p.total);
            sink.field("currency", &p.currency);
        }
        EventPayload::PaymentProcessed(p) => {
            sink.field("orderId", &p.order_id);
            sink.field("paymentId", &p.payment_id);
            decimal(sink, "amount", p.amount);
            sink.field("currency", &p.currency);
        }
        EventPayload::PaymentFailed(p) => {
            sink.field("orderId", &p.order_id);
            decimal(sink, "amount", p.amount);
            sink.field("currency", &p.currency);
            sink.field("reasonCode", &p.reason_code);
            sink.field("reason", &p.reason);
        }
        EventPayload::InventoryReserved(p) => {
            sink.field("orderId", &p.order_id);
            sink.field("reservationId", &p.reservation_id);
            count(sink, "items[]", p.items.len() as u32);
            for item in &p.items {
                sink.field("items[].sku", &item.sku);
                count(sink, "items[].quantity", item.quantity);
            }
        }
        EventPayload::InventoryOutOfStock(p) => {
            sink.field("orderId", &p.order_id);
            count(sink, "shortages[]", p.shortages.len() as u32);
            for shortage in &p.shortages {
                sink.field("shortages[].sku", &shortage.sku);
                count(sink, "shortages[].requested", shortage.requested);
                count(sink, "shortages[].available", shortage.available);
            }
        }
        EventPayload::OrderCancelled(p) => {
            sink.field("orderId", &p.order_id);
            sink.field("reason", p.reason.as_str());
        }
        EventPayload::OrderConfirmed(p) => {
            sink.field("orderId", &p.order_id);
            sink.field("paymentId", &p.payment_id);
            decimal(sink, "total", p.total);
            sink.field("currency", &p.currency);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::event::{EventType, examples};

    struct Paths(BTreeSet<&'static str>);

    impl IdentitySink for Paths {
        fn field(&mut self, path: &'static str, _: &str) {
            self.0.insert(path);
        }
    }

    /// The required fields of `data` in a schema, nested lists as `list[].field`.
    fn required(schema: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
        let Some(names) = schema["required"].as_array() else {
            return;
        };
        for name in names.iter().filter_map(|n| n.as_str()) {
            let path = format!("{prefix}{name}");
            let property = &schema["properties"][name];
            if property["type"] == "array" {
                out.insert(format!("{path}[]"));
                required(&property["items"], &format!("{path}[]."), out);
            } else {
                out.insert(path);
            }
        }
    }

    #[test]
    fn the_identity_is_exactly_the_required_fields_of_the_current_schema() {
        for event_type in EventType::all() {
            let text =
                crate::event::schema::schema(event_type, event_type.current_version()).unwrap();
            let schema: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut expected = BTreeSet::new();
            required(&schema["properties"]["data"], "", &mut expected);
            expected.insert("eventType".to_owned());
            let mut paths = Paths(BTreeSet::new());
            visit(&examples::example(event_type).payload, &mut paths);
            let got: BTreeSet<String> = paths.0.iter().map(|p| (*p).to_owned()).collect();
            assert_eq!(got, expected, "{event_type}");
        }
    }
}
