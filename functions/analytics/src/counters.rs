//! Which counters an event moves, pure: per day (counts, and revenue per currency) and per SKU.

use orderflow::Event;
use orderflow::event::{EventPayload, OrderPlaced};
use rust_decimal::Decimal;

/// Amounts to add to the attributes of one analytics item.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterUpdate {
    /// The item: `DAY#<date>`, `REVENUE#<date>#<currency>` or `SKU#<sku>`.
    pub key: String,
    /// `(attribute, amount)` pairs, added atomically.
    pub add: Vec<(String, Decimal)>,
}

fn update(key: String, add: &[(&str, Decimal)]) -> CounterUpdate {
    CounterUpdate {
        key,
        add: add.iter().map(|(a, n)| ((*a).to_owned(), *n)).collect(),
    }
}

/// The counter updates for `event`, dated by when it happened (UTC).
pub fn updates(event: &Event) -> Vec<CounterUpdate> {
    let day = event.occurred_at.format("%Y-%m-%d").to_string();
    match &event.payload {
        EventPayload::OrderPlaced(order) => placed(&day, order),
        EventPayload::OrderConfirmed(order) => vec![
            update(format!("DAY#{day}"), &[("ordersConfirmed", Decimal::ONE)]),
            update(
                format!("REVENUE#{day}#{}", order.currency),
                &[("confirmed", order.total)],
            ),
        ],
        EventPayload::OrderCancelled(_) => vec![update(
            format!("DAY#{day}"),
            &[("ordersCancelled", Decimal::ONE)],
        )],
        _ => Vec::new(),
    }
}

fn placed(day: &str, order: &OrderPlaced) -> Vec<CounterUpdate> {
    let mut updates = vec![
        update(format!("DAY#{day}"), &[("ordersPlaced", Decimal::ONE)]),
        update(
            format!("REVENUE#{day}#{}", order.currency),
            &[("placed", order.total)],
        ),
    ];
    for item in &order.items {
        let line = item.unit_price * Decimal::from(item.quantity);
        let key = format!("SKU#{}", item.sku);
        let revenue = format!("revenue{}", order.currency);
        // Two lines of one SKU become one update: a transaction may touch an item only once.
        match updates.iter_mut().find(|u| u.key == key) {
            Some(existing) => {
                for (attribute, amount) in &mut existing.add {
                    if attribute == "units" {
                        *amount += Decimal::from(item.quantity);
                    } else if *attribute == revenue {
                        *amount += line;
                    }
                }
            }
            None => updates.push(update(
                key,
                &[
                    ("units", Decimal::from(item.quantity)),
                    (&revenue, line),
                    ("orderLines", Decimal::ONE),
                ],
            )),
        }
    }
    updates
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow::event::{EventType, examples};

    #[test]
    fn an_order_counts_per_day_per_currency_and_per_sku() {
        let event = examples::order_placed();
        let day = event.occurred_at.format("%Y-%m-%d").to_string();
        let updates = updates(&event);
        assert_eq!(
            updates[0],
            update(format!("DAY#{day}"), &[("ordersPlaced", Decimal::ONE)])
        );
        assert_eq!(
            updates[1],
            update(
                format!("REVENUE#{day}#EUR"),
                &[("placed", Decimal::new(4048, 2))]
            )
        );
        assert_eq!(
            updates[2],
            update(
                "SKU#SKU-RED-MUG".into(),
                &[
                    ("units", Decimal::from(2)),
                    ("revenueEUR", Decimal::new(2500, 2)),
                    ("orderLines", Decimal::ONE)
                ]
            )
        );
        assert_eq!(updates.len(), 4);
    }

    #[test]
    fn lines_of_one_sku_become_one_update() {
        let mut event = examples::order_placed();
        if let EventPayload::OrderPlaced(order) = &mut event.payload {
            order.items[1].sku = order.items[0].sku.clone();
        }
        let updates = updates(&event);
        assert_eq!(updates.len(), 3);
        assert_eq!(updates[2].add[0], ("units".to_owned(), Decimal::from(3)));
        assert_eq!(
            updates[2].add[1],
            ("revenueEUR".to_owned(), Decimal::new(4048, 2))
        );
    }

    #[test]
    fn confirmations_add_revenue_and_cancellations_count() {
        let confirmed = updates(&examples::example(EventType::OrderConfirmed));
        assert_eq!(
            confirmed[1].add,
            [("confirmed".to_owned(), Decimal::new(4048, 2))]
        );
        let cancelled = updates(&examples::example(EventType::OrderCancelled));
        assert_eq!(cancelled.len(), 1);
        assert_eq!(
            cancelled[0].add,
            [("ordersCancelled".to_owned(), Decimal::ONE)]
        );
        assert!(updates(&examples::example(EventType::PaymentFailed)).is_empty());
    }
}
