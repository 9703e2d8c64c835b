//! Valid example events of every type: a starting point for other publishers
//! (`orderflow publish --example order-placed`) and for tests.

use rust_decimal::Decimal;

use super::payload::{
    Address, CancellationReason, InventoryOutOfStock, InventoryReserved, OrderCancelled,
    OrderConfirmed, OrderItem, OrderPlaced, PaymentFailed, PaymentProcessed, ReservedItem,
    StockShortage,
};
use super::{Event, EventType};

const ORDER_ID: &str = "ord-1001";

/// A fresh, valid `OrderPlaced` (new `eventId`, `occurredAt` now) for order `ord-1001`.
pub fn order_placed() -> Event {
    Event::new(
        "orders",
        OrderPlaced {
            order_id: ORDER_ID.to_owned(),
            customer_id: "cust-42".to_owned(),
            items: vec![
                OrderItem {
                    sku: "SKU-RED-MUG".to_owned(),
                    quantity: 2,
                    unit_price: Decimal::new(1250, 2),
                },
                OrderItem {
                    sku: "SKU-TEA-100G".to_owned(),
                    quantity: 1,
                    unit_price: Decimal::new(1548, 2),
                },
            ],
            total: Decimal::new(4048, 2),
            currency: "EUR".to_owned(),
            customer_email: Some("ada@example.com".to_owned()),
            shipping_address: Some(Address {
                name: "Ada Lovelace".to_owned(),
                line1: "12 St James's Square".to_owned(),
                line2: None,
                city: "London".to_owned(),
                postal_code: "SW1Y 4JH".to_owned(),
                country: "GB".to_owned(),
            }),
        },
    )
}

/// A fresh, valid example of `event_type`; follow-up events are caused by an `OrderPlaced`.
pub fn example(event_type: EventType) -> Event {
    caused_by(&order_placed(), event_type)
}

/// A valid example of `event_type` about `cause`'s order (its `aggregateId`), caused by it (its
/// `correlationId`, `causationId` = its `eventId`). An `OrderPlaced` is caused by nothing:
/// asked for one, this gives `cause` itself if it is one, else a fresh [`order_placed`] (of
/// order `ord-1001`).
pub fn caused_by(cause: &Event, event_type: EventType) -> Event {
    let order_id = cause.aggregate_id.clone();
    let total = Decimal::new(4048, 2);
    let currency = "EUR".to_owned();
    match event_type {
        EventType::OrderPlaced if cause.event_type() == EventType::OrderPlaced => cause.clone(),
        EventType::OrderPlaced => order_placed(),
        EventType::PaymentProcessed => Event::caused_by(
            cause,
            "payment",
            PaymentProcessed {
                order_id,
                payment_id: "pay-5001".to_owned(),
                amount: total,
                currency,
            },
        ),
        EventType::PaymentFailed => Event::caused_by(
            cause,
            "payment",
            PaymentFailed {
                order_id,
                amount: total,
                currency,
                reason_code: "card_declined".to_owned(),
                reason: "the card issuer declined the charge".to_owned(),
            },
        ),
        EventType::InventoryReserved => Event::caused_by(
            cause,
            "inventory",
            InventoryReserved {
                order_id,
                reservation_id: format!("res-{}", cause.aggregate_id),
                items: vec![
                    ReservedItem {
                        sku: "SKU-RED-MUG".to_owned(),
                        quantity: 2,
                    },
                    ReservedItem {
                        sku: "SKU-TEA-100G".to_owned(),
                        quantity: 1,
                    },
                ],
            },
        ),
        EventType::InventoryOutOfStock => Event::caused_by(
            cause,
            "inventory",
            InventoryOutOfStock {
                order_id,
                shortages: vec![StockShortage {
                    sku: "SKU-RED-MUG".to_owned(),
                    requested: 2,
                    available: 1,
                }],
            },
        ),
        EventType::OrderCancelled => Event::caused_by(
            cause,
            "orders",
            OrderCancelled {
                order_id,
                reason: CancellationReason::PaymentFailed,
                detail: Some("the card issuer declined the charge".to_owned()),
            },
        ),
        EventType::OrderConfirmed => Event::caused_by(
            cause,
            "orders",
            OrderConfirmed {
                order_id,
                payment_id: "pay-5001".to_owned(),
                total,
                currency,
            },
        ),
    }
}
