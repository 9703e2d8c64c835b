//! Which counters an event moves, pure: per day (counts, and revenue per currency) and per SKU.
//!
//! Every counter is split over [`SHARDS`] items, `<key>#<shard>`, the shard chosen by the order
//! id: one day's counters or one popular SKU's are touched by every order, and concurrent
//! transactions on one item cancel each other (`TransactionConflict`). Readers add the shards
//! up ([`sum_shards`]).

use std::collections::BTreeMap;

use orderflow::Event;
use orderflow::event::{EventPayload, OrderPlaced};
use rust_decimal::Decimal;

/// How many items each counter is split over.
pub const SHARDS: u32 = 10;

/// The shard of an order's counters: FNV-1a of its id, so an order always lands on the same
/// shard (a redelivery adds to the same items) and orders spread evenly.
pub fn shard(order_id: &str) -> u32 {
    let hash = order_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    (hash % u64::from(SHARDS)) as u32
}

/// The counter a stored item belongs to: its key without the shard (`DAY#2026-11-23#7` →
/// `DAY#2026-11-23`).
pub fn counter_key(item_key: &str) -> &str {
    match item_key.rsplit_once('#') {
        Some((counter, shard)) if shard.parse::<u32>().is_ok() => counter,
        _ => item_key,
    }
}

/// Adds the shards of every counter up: `(item key, [(attribute, amount)])` in, totals by
/// counter key and attribute out.
pub fn sum_shards<'a>(
    items: impl IntoIterator<Item = (&'a str, Vec<(String, Decimal)>)>,
) -> BTreeMap<String, BTreeMap<String, Decimal>> {
    let mut totals: BTreeMap<String, BTreeMap<String, Decimal>> = BTreeMap::new();
    for (key, amounts) in items {
        let counter = totals.entry(counter_key(key).to_owned()).or_default();
        for (attribute, amount) in amounts {
            *counter.entry(attribute).or_default() += amount;
        }
    }
    totals
}

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

/// The counter updates for `event`, dated by when it happened (UTC), on its order's shard.
pub fn updates(event: &Event) -> Vec<CounterUpdate> {
    let shard = shard(&event.aggregate_id);
    let mut updates = unsharded(event);
    for update in &mut updates {
        update.key = format!("{}#{shard}", update.key);
    }
    updates
}

fn unsharded(event: &Event) -> Vec<CounterUpdate> {
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
        let updates = unsharded(&event);
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
        let updates = unsharded(&event);
        assert_eq!(updates.len(), 3);
        assert_eq!(updates[2].add[0], ("units".to_owned(), Decimal::from(3)));
        assert_eq!(
            updates[2].add[1],
            ("revenueEUR".to_owned(), Decimal::new(4048, 2))
        );
    }

    #[test]
    fn confirmations_add_revenue_and_cancellations_count() {
        let confirmed = unsharded(&examples::example(EventType::OrderConfirmed));
        assert_eq!(
            confirmed[1].add,
            [("confirmed".to_owned(), Decimal::new(4048, 2))]
        );
        let cancelled = unsharded(&examples::example(EventType::OrderCancelled));
        assert_eq!(cancelled.len(), 1);
        assert_eq!(
            cancelled[0].add,
            [("ordersCancelled".to_owned(), Decimal::ONE)]
        );
        assert!(updates(&examples::example(EventType::PaymentFailed)).is_empty());
    }

    #[test]
    fn counters_are_sharded_by_order_and_shards_add_up() {
        let event = examples::order_placed();
        let shard = shard(&event.aggregate_id);
        assert!(
            updates(&event)
                .iter()
                .all(|u| u.key.ends_with(&format!("#{shard}")))
        );
        assert_eq!(counter_key("DAY#2026-11-23#7"), "DAY#2026-11-23");
        assert_eq!(counter_key("SKU#SKU-RED-MUG#0"), "SKU#SKU-RED-MUG");
        assert_eq!(
            counter_key("REVENUE#2026-11-23#EUR"),
            "REVENUE#2026-11-23#EUR"
        );
        let spread: std::collections::BTreeSet<u32> = (0..200)
            .map(|i| super::shard(&format!("ord-{i}")))
            .collect();
        assert_eq!(
            spread.len(),
            SHARDS as usize,
            "orders spread over every shard"
        );
        let totals = sum_shards([
            ("DAY#d#1", vec![("ordersPlaced".to_owned(), Decimal::ONE)]),
            ("DAY#d#4", vec![("ordersPlaced".to_owned(), Decimal::TWO)]),
        ]);
        assert_eq!(totals["DAY#d"]["ordersPlaced"], Decimal::from(3));
    }
}
