//! The JSON Schemas (draft 2020-12) of every event type and version, as checked in under
//! `shared/schemas/`. Other systems validate against them before publishing to our topic.

use super::EventType;

/// The schema of `event_type` at `version`, or `None` if no such version exists.
pub fn schema(event_type: EventType, version: u32) -> Option<&'static str> {
    use EventType as T;
    Some(match (event_type, version) {
        (T::OrderPlaced, 1) => include_str!("../../schemas/order-placed.v1.schema.json"),
        (T::OrderPlaced, 2) => include_str!("../../schemas/order-placed.v2.schema.json"),
        (T::PaymentProcessed, 1) => include_str!("../../schemas/payment-processed.v1.schema.json"),
        (T::PaymentFailed, 1) => include_str!("../../schemas/payment-failed.v1.schema.json"),
        (T::InventoryReserved, 1) => {
            include_str!("../../schemas/inventory-reserved.v1.schema.json")
        }
        (T::InventoryOutOfStock, 1) => {
            include_str!("../../schemas/inventory-out-of-stock.v1.schema.json")
        }
        (T::OrderCancelled, 1) => include_str!("../../schemas/order-cancelled.v1.schema.json"),
        (T::OrderConfirmed, 1) => include_str!("../../schemas/order-confirmed.v1.schema.json"),
        _ => return None,
    })
}

/// The file name of a schema under `shared/schemas/`, e.g. `order-placed.v2.schema.json`.
pub fn file_name(event_type: EventType, version: u32) -> String {
    format!("{}.v{version}.schema.json", event_type.kebab_name())
}
