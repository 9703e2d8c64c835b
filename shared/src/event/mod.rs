//! The event contract: one envelope for every event, a typed payload per event type, versions
//! and upcasting, validation with typed errors, and the JSON Schemas other publishers use.
//!
//! Every event travels as one JSON document:
//!
//! ```json
//! {
//!   "eventId": "7f1c…", "eventType": "OrderPlaced", "eventVersion": 2,
//!   "occurredAt": "2026-11-23T10:15:00.000Z", "aggregateId": "ord-1001",
//!   "correlationId": "7f1c…", "causationId": null, "source": "orders",
//!   "data": { "orderId": "ord-1001", … }
//! }
//! ```
//!
//! [`Event::decode`] (and [`Event::decode_str`], the same for text) is the only way in: it
//! checks size, JSON syntax, the envelope, the event type and version (upcasting older
//! versions), then the payload's business rules.
//! [`Event::encode`] is the only way out and applies the same rules, so an invalid event is
//! never published.

mod envelope;
mod error;
pub mod examples;
mod identity;
mod payload;
pub mod schema;
mod types;
mod validate;
mod versions;

pub use envelope::Event;
pub use error::EventError;
pub use payload::{
    Address, CancellationReason, EventData, EventPayload, InventoryOutOfStock, InventoryReserved,
    OrderCancelled, OrderConfirmed, OrderItem, OrderPlaced, PaymentFailed, PaymentProcessed,
    ReservedItem, StockShortage,
};
pub use types::EventType;
pub use versions::OrderPlacedV1;

pub(crate) use identity::{IdentitySink, visit as visit_identity};

/// Most lines an order may hold. Consumers write one item per distinct SKU in the same
/// DynamoDB transaction as their idempotency record, and a transaction holds at most 100 writes.
pub const MAX_ORDER_LINES: usize = 50;

/// SNS's limit for one message (body plus message attributes): 256 KiB.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
