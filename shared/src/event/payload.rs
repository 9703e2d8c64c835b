//! The typed payload (`data`) of every event type, at its current version.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::EventType;

/// One line of an order.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// Stock keeping unit.
    pub sku: String,
    /// How many units; at least 1.
    pub quantity: u32,
    /// Price of one unit in `currency`, as an exact decimal string (`"19.99"`).
    pub unit_price: Decimal,
}

/// Where an order ships to.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// Recipient name.
    pub name: String,
    /// First address line.
    pub line1: String,
    /// Second address line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// City or town.
    pub city: String,
    /// Postal or ZIP code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, e.g. `"DE"`.
    pub country: String,
}

/// `OrderPlaced` v2: a customer placed an order.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    /// The order's id; also the envelope's `aggregateId`.
    pub order_id: String,
    /// Who placed it.
    pub customer_id: String,
    /// What was ordered; at least one item.
    pub items: Vec<OrderItem>,
    /// Sum of `quantity × unitPrice` over `items`, exactly.
    pub total: Decimal,
    /// ISO 4217 currency code of every amount, e.g. `"EUR"`.
    pub currency: String,
    /// Where to send the customer's notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// Where the order ships to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
}

/// `PaymentProcessed` v1: the payment for an order was captured.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentProcessed {
    /// The order paid for.
    pub order_id: String,
    /// The payment provider's reference.
    pub payment_id: String,
    /// Amount captured.
    pub amount: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// `PaymentFailed` v1: the payment for an order was declined or could not be taken.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    /// The order that could not be paid for.
    pub order_id: String,
    /// Amount that was attempted.
    pub amount: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Machine-readable reason, e.g. `"card_declined"`.
    pub reason_code: String,
    /// Human-readable reason.
    pub reason: String,
}

/// A reserved quantity of one SKU.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedItem {
    /// Stock keeping unit.
    pub sku: String,
    /// Units reserved; at least 1.
    pub quantity: u32,
}

/// `InventoryReserved` v1: stock for every item of an order was reserved.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryReserved {
    /// The order the stock is held for.
    pub order_id: String,
    /// The reservation's id, used to release it.
    pub reservation_id: String,
    /// What was reserved; at least one item.
    pub items: Vec<ReservedItem>,
}

/// One SKU that could not be reserved.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StockShortage {
    /// Stock keeping unit.
    pub sku: String,
    /// Units the order asked for.
    pub requested: u32,
    /// Units that were available (less than `requested`).
    pub available: u32,
}

/// `InventoryOutOfStock` v1: at least one item of an order could not be reserved; nothing was.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryOutOfStock {
    /// The order that could not be served.
    pub order_id: String,
    /// The SKUs that were short; at least one.
    pub shortages: Vec<StockShortage>,
}

/// Why an order was cancelled.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub enum CancellationReason {
    /// The payment failed.
    PaymentFailed,
    /// Stock could not be reserved.
    OutOfStock,
    /// The customer asked for it.
    CustomerRequest,
}

impl CancellationReason {
    /// The wire name, e.g. `"OutOfStock"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CancellationReason::PaymentFailed => "PaymentFailed",
            CancellationReason::OutOfStock => "OutOfStock",
            CancellationReason::CustomerRequest => "CustomerRequest",
        }
    }
}

/// `OrderCancelled` v1: an order was cancelled; services that acted on it compensate.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    /// The cancelled order.
    pub order_id: String,
    /// Why.
    pub reason: CancellationReason,
    /// Free-text detail, e.g. the payment decline message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `OrderConfirmed` v1: an order was paid for and its stock reserved.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderConfirmed {
    /// The confirmed order.
    pub order_id: String,
    /// The payment that paid for it.
    pub payment_id: String,
    /// The order total.
    pub total: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// The payload of any event, tagged by its type.
///
/// Serialized without a tag: the envelope's `eventType` names the variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventPayload {
    /// See [`OrderPlaced`].
    OrderPlaced(OrderPlaced),
    /// See [`PaymentProcessed`].
    PaymentProcessed(PaymentProcessed),
    /// See [`PaymentFailed`].
    PaymentFailed(PaymentFailed),
    /// See [`InventoryReserved`].
    InventoryReserved(InventoryReserved),
    /// See [`InventoryOutOfStock`].
    InventoryOutOfStock(InventoryOutOfStock),
    /// See [`OrderCancelled`].
    OrderCancelled(OrderCancelled),
    /// See [`OrderConfirmed`].
    OrderConfirmed(OrderConfirmed),
}

impl EventPayload {
    /// The event type this payload belongs to.
    pub fn event_type(&self) -> EventType {
        match self {
            EventPayload::OrderPlaced(_) => EventType::OrderPlaced,
            EventPayload::PaymentProcessed(_) => EventType::PaymentProcessed,
            EventPayload::PaymentFailed(_) => EventType::PaymentFailed,
            EventPayload::InventoryReserved(_) => EventType::InventoryReserved,
            EventPayload::InventoryOutOfStock(_) => EventType::InventoryOutOfStock,
            EventPayload::OrderCancelled(_) => EventType::OrderCancelled,
            EventPayload::OrderConfirmed(_) => EventType::OrderConfirmed,
        }
    }

    /// The order every event is about (the envelope's `aggregateId`).
    pub fn order_id(&self) -> &str {
        match self {
            EventPayload::OrderPlaced(p) => &p.order_id,
            EventPayload::PaymentProcessed(p) => &p.order_id,
            EventPayload::PaymentFailed(p) => &p.order_id,
            EventPayload::InventoryReserved(p) => &p.order_id,
            EventPayload::InventoryOutOfStock(p) => &p.order_id,
            EventPayload::OrderCancelled(p) => &p.order_id,
            EventPayload::OrderConfirmed(p) => &p.order_id,
        }
    }
}

/// A payload type that handlers can ask for: the consumer routes events of
/// [`EventData::EVENT_TYPE`] to a handler taking this type.
pub trait EventData:
    Into<EventPayload> + TryFrom<EventPayload, Error = EventPayload> + Clone + Send + Sync + 'static
{
    /// The event type whose payload this is.
    const EVENT_TYPE: EventType;
}

macro_rules! payload_conversions {
    ($($name:ident),* $(,)?) => {$(
        impl EventData for $name {
            const EVENT_TYPE: EventType = EventType::$name;
        }

        impl From<$name> for EventPayload {
            fn from(payload: $name) -> Self {
                EventPayload::$name(payload)
            }
        }

        impl TryFrom<EventPayload> for $name {
            type Error = EventPayload;

            /// Takes the payload out if it is of this type; gives it back otherwise.
            fn try_from(payload: EventPayload) -> Result<Self, Self::Error> {
                match payload {
                    EventPayload::$name(p) => Ok(p),
                    other => Err(other),
                }
            }
        }
    )*};
}

payload_conversions!(
    OrderPlaced,
    PaymentProcessed,
    PaymentFailed,
    InventoryReserved,
    InventoryOutOfStock,
    OrderCancelled,
    OrderConfirmed,
);
