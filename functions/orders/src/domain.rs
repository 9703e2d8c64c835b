//! The order service's rules, pure: what a valid order request is, what an order looks like,
//! and what the saga does when payment and inventory report back.

use chrono::{DateTime, Utc};
use orderflow::event::{Address, CancellationReason, OrderItem, OrderPlaced, StockShortage};
use orderflow::{Event, EventError};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `POST /orders` body.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrder {
    /// Who orders.
    pub customer_id: String,
    /// What (the total is computed from these).
    pub items: Vec<OrderItem>,
    /// ISO 4217 code.
    pub currency: String,
    /// Where to send notifications.
    #[serde(default)]
    pub customer_email: Option<String>,
    /// Where to ship.
    #[serde(default)]
    pub shipping_address: Option<Address>,
}

/// One problem with a request, as the API reports it.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct FieldError {
    /// JSON path in the request, e.g. `items[0].quantity`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Waiting for payment and inventory.
    Placed,
    /// Paid and reserved.
    Confirmed,
    /// Payment failed or stock was short.
    Cancelled,
}

/// An order as the service stores it.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// `ord-<uuid>`.
    pub order_id: String,
    /// Who ordered.
    pub customer_id: String,
    /// What.
    pub items: Vec<OrderItem>,
    /// Σ quantity × unit price.
    pub total: Decimal,
    /// ISO 4217 code.
    pub currency: String,
    /// Contact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// Shipping address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    /// Where it is.
    pub status: OrderStatus,
    /// Set once payment is captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Set once stock is reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    /// Why it was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_detail: Option<String>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// The system that placed it, when that was not this service's API (its `OrderPlaced`
    /// came straight through the topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_by: Option<String>,
}

/// Parses and validates a request body; every problem is reported, not just the first.
pub fn parse_request(body: &[u8]) -> Result<CreateOrder, Vec<FieldError>> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let request: CreateOrder =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let field = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.to_string();
            let message = match message.rfind(" at line ") {
                Some(at) if !inner.is_syntax() && !inner.is_eof() => message[..at].to_owned(),
                _ => message,
            };
            vec![FieldError {
                field: if field == "." { String::new() } else { field },
                message,
            }]
        })?;
    Ok(request)
}

impl Order {
    /// A new order from a request (with its total computed), or every field error.
    pub fn place(
        order_id: String,
        request: CreateOrder,
        now: DateTime<Utc>,
    ) -> Result<(Order, Event), Vec<FieldError>> {
        let total = request
            .items
            .iter()
            .try_fold(Decimal::ZERO, |sum, i| {
                sum.checked_add(i.unit_price.checked_mul(Decimal::from(i.quantity))?)
            })
            .ok_or_else(|| {
                vec![FieldError {
                    field: "items".into(),
                    message: "amounts overflow".into(),
                }]
            })?;
        let order = Order {
            order_id,
            customer_id: request.customer_id,
            items: request.items,
            total,
            currency: request.currency,
            customer_email: request.customer_email,
            shipping_address: request.shipping_address,
            status: OrderStatus::Placed,
            payment_id: None,
            reservation_id: None,
            cancel_detail: None,
            created_at: now,
            placed_by: None,
        };
        // The event contract's rules are the request's rules: one set of rules, all reported.
        let event = order.placed_event(now);
        // The total is computed here, not sent: a problem with it only echoes the items'.
        let problems: Vec<EventError> = event
            .problems()
            .into_iter()
            .filter(
                |p| !matches!(p, EventError::InvalidField { field, .. } if field == "data.total"),
            )
            .collect();
        if !problems.is_empty() {
            return Err(problems.into_iter().map(field_error).collect());
        }
        Ok((order, event))
    }

    /// An order another system placed, as its `OrderPlaced` tells it.
    pub fn placed_elsewhere(event: &Event, placed: &OrderPlaced) -> Order {
        Order {
            order_id: placed.order_id.clone(),
            customer_id: placed.customer_id.clone(),
            items: placed.items.clone(),
            total: placed.total,
            currency: placed.currency.clone(),
            customer_email: placed.customer_email.clone(),
            shipping_address: placed.shipping_address.clone(),
            status: OrderStatus::Placed,
            payment_id: None,
            reservation_id: None,
            cancel_detail: None,
            created_at: event.occurred_at,
            placed_by: Some(event.source.clone()),
        }
    }

    /// The `OrderPlaced` fact for this order; its id is derived from the order id, so saving
    /// the same order twice can never produce two different events.
    pub fn placed_event(&self, now: DateTime<Utc>) -> Event {
        let mut event = Event::new(
            crate::NAME,
            OrderPlaced {
                order_id: self.order_id.clone(),
                customer_id: self.customer_id.clone(),
                items: self.items.clone(),
                total: self.total,
                currency: self.currency.clone(),
                customer_email: self.customer_email.clone(),
                shipping_address: self.shipping_address.clone(),
            },
        );
        event.event_id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("orderflow/OrderPlaced/{}", self.order_id).as_bytes(),
        );
        event.correlation_id = event.event_id.to_string();
        event.occurred_at = now;
        event
    }
}

/// An event-contract problem as a request field error (`data.items[0].sku` → `items[0].sku`).
fn field_error(problem: EventError) -> FieldError {
    match problem {
        EventError::InvalidField { field, reason } => FieldError {
            field: field.strip_prefix("data.").unwrap_or(&field).to_owned(),
            message: reason,
        },
        other => FieldError {
            field: String::new(),
            message: other.to_string(),
        },
    }
}

/// What the saga does with a report from payment or inventory.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Decision {
    /// Nothing to change (say why, for the log).
    Ignore(&'static str),
    /// Remember the payment; wait for the reservation.
    RecordPayment(String),
    /// Remember the reservation; wait for the payment.
    RecordReservation(String),
    /// Both are in: confirm.
    Confirm {
        /// The payment.
        payment_id: String,
        /// The reservation.
        reservation_id: String,
    },
    /// Cancel, and say why.
    Cancel {
        /// The reason code.
        reason: CancellationReason,
        /// Detail for the customer.
        detail: String,
    },
}

/// PaymentProcessed arrived.
pub fn on_payment_processed(order: &Order, payment_id: &str) -> Decision {
    match order.status {
        OrderStatus::Cancelled => Decision::Ignore("cancelled already; payment refunds the charge"),
        OrderStatus::Confirmed => Decision::Ignore("confirmed already"),
        OrderStatus::Placed => match &order.reservation_id {
            Some(reservation_id) => Decision::Confirm {
                payment_id: payment_id.to_owned(),
                reservation_id: reservation_id.clone(),
            },
            None => Decision::RecordPayment(payment_id.to_owned()),
        },
    }
}

/// InventoryReserved arrived.
pub fn on_inventory_reserved(order: &Order, reservation_id: &str) -> Decision {
    match (order.status, &order.payment_id) {
        (OrderStatus::Cancelled, _) => {
            Decision::Ignore("cancelled already; inventory releases the stock")
        }
        (OrderStatus::Confirmed, _) => Decision::Ignore("confirmed already"),
        (OrderStatus::Placed, Some(payment_id)) => Decision::Confirm {
            payment_id: payment_id.clone(),
            reservation_id: reservation_id.to_owned(),
        },
        (OrderStatus::Placed, None) => Decision::RecordReservation(reservation_id.to_owned()),
    }
}

/// PaymentFailed arrived.
pub fn on_payment_failed(order: &Order, reason: &str) -> Decision {
    cancel(order, CancellationReason::PaymentFailed, reason.to_owned())
}

/// InventoryOutOfStock arrived.
pub fn on_out_of_stock(order: &Order, shortages: &[StockShortage]) -> Decision {
    let short: Vec<String> = shortages
        .iter()
        .map(|s| format!("{} ({} of {} available)", s.sku, s.available, s.requested))
        .collect();
    cancel(
        order,
        CancellationReason::OutOfStock,
        format!("out of stock: {}", short.join(", ")),
    )
}

/// A cancellation happens once, and never after confirmation.
fn cancel(order: &Order, reason: CancellationReason, detail: String) -> Decision {
    match order.status {
        OrderStatus::Placed => Decision::Cancel { reason, detail },
        OrderStatus::Cancelled => Decision::Ignore("cancelled already"),
        OrderStatus::Confirmed => {
            Decision::Ignore("confirmed orders are never cancelled by the saga")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> serde_json::Value {
        json!({
            "customerId": "cust-1", "currency": "EUR", "customerEmail": "ada@example.com",
            "items": [{"sku": "A", "quantity": 2, "unitPrice": "12.50"}, {"sku": "B", "quantity": 1, "unitPrice": "15.48"}]
        })
    }

    fn placed() -> Order {
        let request = parse_request(request().to_string().as_bytes()).unwrap();
        Order::place("ord-1".into(), request, Utc::now()).unwrap().0
    }

    #[test]
    fn a_valid_request_becomes_an_order_and_its_event_with_the_total_computed() {
        let request = parse_request(request().to_string().as_bytes()).unwrap();
        let (order, event) = Order::place("ord-1".into(), request, Utc::now()).unwrap();
        assert_eq!(order.total, Decimal::new(4048, 2));
        assert_eq!(order.status, OrderStatus::Placed);
        assert_eq!(event.aggregate_id, "ord-1");
        assert_eq!(
            event.event_id,
            order.placed_event(Utc::now()).event_id,
            "one order, one event id"
        );
        assert!(event.validate().is_ok());
    }

    #[test]
    fn every_field_error_is_reported_at_once() {
        let mut body = request();
        body["items"][0]["quantity"] = json!(0);
        body["items"][1]["sku"] = json!("");
        body["currency"] = json!("euro");
        body["customerEmail"] = json!("not-an-address");
        let request = parse_request(body.to_string().as_bytes()).unwrap();
        let errors = Order::place("ord-1".into(), request, Utc::now()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "items[0].quantity",
                "items[1].sku",
                "currency",
                "customerEmail"
            ]
        );
    }

    #[test]
    fn malformed_and_mistyped_bodies_name_the_problem() {
        let errors = parse_request(b"{\"customerId\": ").unwrap_err();
        assert!(errors[0].message.contains("EOF"), "{errors:?}");
        let mut body = request();
        body["items"][0]["quantity"] = json!("two");
        let errors = parse_request(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(errors[0].field, "items[0].quantity");
        let errors = parse_request(b"{\"currency\": \"EUR\", \"items\": []}").unwrap_err();
        assert_eq!(errors[0].message, "missing field `customerId`");
        let empty = parse_request(b"{\"customerId\": \"c\", \"currency\": \"EUR\", \"items\": []}")
            .unwrap();
        let errors = Order::place("ord-1".into(), empty, Utc::now()).unwrap_err();
        assert_eq!(
            errors[0],
            FieldError {
                field: "items".into(),
                message: "must hold at least one item".into()
            }
        );
    }

    #[test]
    fn the_order_is_confirmed_when_both_payment_and_reservation_are_in() {
        let order = placed();
        assert_eq!(
            on_payment_processed(&order, "pay-1"),
            Decision::RecordPayment("pay-1".into())
        );
        assert_eq!(
            on_inventory_reserved(&order, "res-1"),
            Decision::RecordReservation("res-1".into())
        );
        let paid = Order {
            payment_id: Some("pay-1".into()),
            ..order.clone()
        };
        let both = Decision::Confirm {
            payment_id: "pay-1".into(),
            reservation_id: "res-1".into(),
        };
        assert_eq!(on_inventory_reserved(&paid, "res-1"), both);
        let reserved = Order {
            reservation_id: Some("res-1".into()),
            ..order
        };
        assert_eq!(on_payment_processed(&reserved, "pay-1"), both);
    }

    #[test]
    fn cancellation_happens_once_and_never_after_confirmation() {
        let order = placed();
        assert!(matches!(
            on_payment_failed(&order, "declined"),
            Decision::Cancel {
                reason: CancellationReason::PaymentFailed,
                ..
            }
        ));
        let shortages = [StockShortage {
            sku: "A".into(),
            requested: 2,
            available: 1,
        }];
        assert_eq!(
            on_out_of_stock(&order, &shortages),
            Decision::Cancel {
                reason: CancellationReason::OutOfStock,
                detail: "out of stock: A (1 of 2 available)".into()
            }
        );
        let cancelled = Order {
            status: OrderStatus::Cancelled,
            ..order.clone()
        };
        assert!(matches!(
            on_out_of_stock(&cancelled, &shortages),
            Decision::Ignore(_)
        ));
        assert!(matches!(
            on_payment_processed(&cancelled, "pay-1"),
            Decision::Ignore(_)
        ));
        let confirmed = Order {
            status: OrderStatus::Confirmed,
            ..order
        };
        assert!(matches!(
            on_payment_failed(&confirmed, "late"),
            Decision::Ignore(_)
        ));
        assert!(matches!(
            on_inventory_reserved(&confirmed, "res-1"),
            Decision::Ignore(_)
        ));
    }
}
