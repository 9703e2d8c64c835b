//! What the customer is told, pure: one message per event type.

use orderflow::event::{CancellationReason, OrderCancelled, OrderConfirmed, OrderPlaced};

/// One message to one customer.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Email {
    /// Unique per message: the id of the event it is about, so it is sent once.
    pub message_id: String,
    /// The order.
    pub order_id: String,
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Text body.
    pub body: String,
}

/// "We have your order".
pub fn placed(order: &OrderPlaced) -> (String, String) {
    let lines: Vec<String> = order
        .items
        .iter()
        .map(|i| {
            format!(
                "  {} × {} at {} {}",
                i.quantity, i.sku, i.unit_price, order.currency
            )
        })
        .collect();
    (
        format!("We received your order {}", order.order_id),
        format!(
            "Thank you for your order {}.\n{}\nTotal: {} {}\nWe will write again once it is confirmed.",
            order.order_id,
            lines.join("\n"),
            order.total,
            order.currency
        ),
    )
}

/// "Paid and reserved".
pub fn confirmed(order: &OrderConfirmed) -> (String, String) {
    (
        format!("Your order {} is confirmed", order.order_id),
        format!(
            "Your payment of {} {} was received (payment {}) and every item is reserved for you.",
            order.total, order.currency, order.payment_id
        ),
    )
}

/// "Cancelled, and why".
pub fn cancelled(order: &OrderCancelled) -> (String, String) {
    let why = match order.reason {
        CancellationReason::PaymentFailed => "the payment did not go through",
        CancellationReason::OutOfStock => "some items are out of stock",
        CancellationReason::CustomerRequest => "you asked us to cancel it",
    };
    let detail = order
        .detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    (
        format!("Your order {} was cancelled", order.order_id),
        format!(
            "We cancelled your order {} because {why}{detail}. Any payment taken will be refunded.",
            order.order_id
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow::event::{EventPayload, EventType, examples};

    #[test]
    fn each_message_names_the_order_and_what_happened() {
        let EventPayload::OrderPlaced(order) = examples::order_placed().payload else {
            unreachable!()
        };
        let (subject, body) = placed(&order);
        assert_eq!(subject, "We received your order ord-1001");
        assert!(
            body.contains("2 × SKU-RED-MUG at 12.50 EUR") && body.contains("Total: 40.48 EUR"),
            "{body}"
        );

        let EventPayload::OrderConfirmed(order) =
            examples::example(EventType::OrderConfirmed).payload
        else {
            unreachable!()
        };
        assert!(
            confirmed(&order)
                .1
                .contains("40.48 EUR was received (payment pay-5001)")
        );

        let EventPayload::OrderCancelled(order) =
            examples::example(EventType::OrderCancelled).payload
        else {
            unreachable!()
        };
        let (subject, body) = cancelled(&order);
        assert_eq!(subject, "Your order ord-1001 was cancelled");
        assert!(
            body.contains(
                "because the payment did not go through (the card issuer declined the charge)"
            ),
            "{body}"
        );
    }
}
