//! What a chaos run publishes, drawn from its seed: the orders (who pays, which SKU), which of
//! them go out twice, and the poison between them. The same seed gives the same plan.

use orderflow::Event;
use orderflow::event::{EventPayload, examples};
use rust_decimal::Decimal;

/// SKUs with more stock than any run can take: every order of one is reserved.
pub const STOCKED_SKUS: usize = 20;
/// SKUs with none: every order of one ends out of stock. Two classes and no SKU in between, so
/// an order's end never depends on which other orders came first.
pub const SOLD_OUT_SKUS: usize = 2;
/// Units of a stocked SKU.
pub const STOCK: u32 = 1_000_000;

/// How an order should end.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Expected {
    /// Paid and reserved.
    Confirmed,
    /// The card is declined (`decline-` customer): cancelled, stock released.
    Declined,
    /// A sold-out SKU: cancelled, payment refunded.
    OutOfStock,
}

/// One order of the plan.
#[derive(Clone, Debug)]
pub struct PlannedOrder {
    /// The `OrderPlaced` another system publishes.
    pub event: Event,
    /// Published twice (a retry on the publisher's side).
    pub twice: bool,
    /// How it should end.
    pub expected: Expected,
}

/// A message that is not a valid event, published with `OrderPlaced`'s attributes so that
/// every `OrderPlaced` consumer receives it.
#[derive(Clone, Debug)]
pub struct Poison {
    /// The body.
    pub body: String,
    /// Its `eventVersion` attribute.
    pub version: &'static str,
    /// The `errorKind` every consumer must set it aside with: what decoding it says.
    pub kind: &'static str,
}

/// Everything a run publishes.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The orders, in publishing order.
    pub orders: Vec<PlannedOrder>,
    /// The poison, each published after the order of the same index.
    pub poison: Vec<(usize, Poison)>,
}

/// A SKU's name.
pub fn sku(n: usize) -> String {
    if n < STOCKED_SKUS {
        format!("SKU-CHAOS-{n:02}")
    } else {
        format!("SKU-SOLDOUT-{:02}", n - STOCKED_SKUS)
    }
}

impl Plan {
    /// `orders` orders of run `run` drawn from `seed`: 5 % published twice (at least one), 1 %
    /// poison between them (at least three: one malformed, one of an unknown version, one
    /// breaking a rule, then in turn), about 5 % declined, 5 % out of stock. Counts are fixed
    /// and places drawn, so a small run still has every kind of fault. (No `flaky-` customers: the
    /// simulated gateway counts their attempts per process, so with instances killed and
    /// restarted one could fail on every receive; the proxy's faults are the transient failures.)
    pub fn draw(run: &str, orders: usize, seed: u64) -> Plan {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut planned = Vec::with_capacity(orders);
        for n in 0..orders {
            let order_id = format!("{run}-{n:06}");
            let roll = rng.u32(0..100);
            let (customer, sku_index, expected) = match roll {
                0..5 => (
                    format!("decline-{n}"),
                    rng.usize(0..STOCKED_SKUS),
                    Expected::Declined,
                ),
                5..10 => (
                    format!("cust-{n}"),
                    STOCKED_SKUS + rng.usize(0..SOLD_OUT_SKUS),
                    Expected::OutOfStock,
                ),
                _ => (
                    format!("cust-{n}"),
                    rng.usize(0..STOCKED_SKUS),
                    Expected::Confirmed,
                ),
            };
            let quantity = rng.u32(1..4);
            let mut event = examples::order_placed();
            event.event_id = uuid::Uuid::from_u64_pair(seed, n as u64);
            event.correlation_id = format!("corr-{order_id}");
            event.source = "chaos".into();
            event.aggregate_id = order_id.clone();
            if let EventPayload::OrderPlaced(placed) = &mut event.payload {
                placed.order_id = order_id;
                placed.customer_id = customer;
                placed.customer_email = Some(format!("customer-{n}@example.com"));
                placed.items.truncate(1);
                placed.items[0].sku = sku(sku_index);
                placed.items[0].quantity = quantity;
                placed.items[0].unit_price = Decimal::new(1250, 2);
                placed.total = placed.items[0].unit_price * Decimal::from(quantity);
            }
            planned.push(PlannedOrder {
                event,
                twice: false,
                expected,
            });
        }
        let mut places: Vec<usize> = (0..orders).collect();
        rng.shuffle(&mut places);
        let twice = (orders * 5 / 100).max(1).min(orders);
        for &n in &places[..twice] {
            planned[n].twice = true;
        }
        rng.shuffle(&mut places);
        let poisoned = (orders / 100).max(3).min(orders);
        let mut poison: Vec<(usize, Poison)> = places[..poisoned]
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, Self::poison(i % 3, n)))
            .collect();
        poison.sort_by_key(|(n, _)| *n);
        Plan {
            orders: planned,
            poison,
        }
    }

    /// Poison of kind `kind` (0 malformed JSON, 1 an unknown version, 2 a broken rule).
    fn poison(kind: usize, n: usize) -> Poison {
        let mut event = serde_json::to_value(examples::order_placed()).unwrap_or_default();
        event["aggregateId"] = serde_json::json!(format!("poison-{n}"));
        let (body, version) = match kind {
            0 => (format!("{{\"aggregateId\": \"poison-{n}\" oops"), "2"),
            1 => {
                event["eventVersion"] = serde_json::json!(9);
                (event.to_string(), "9")
            }
            _ => {
                // A rule broken: an order of nothing.
                event["data"]["items"] = serde_json::json!([]);
                (event.to_string(), "2")
            }
        };
        let kind = orderflow::Event::decode(body.as_bytes())
            .err()
            .map_or("none", |err| err.kind());
        Poison {
            body,
            version,
            kind,
        }
    }

    /// The valid events, once each.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.orders.iter().map(|o| &o.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_still_has_a_duplicate_and_every_kind_of_poison() {
        let plan = Plan::draw("r", 20, 3);
        assert_eq!(plan.orders.iter().filter(|o| o.twice).count(), 1);
        let mut kinds: Vec<&str> = plan.poison.iter().map(|(_, p)| p.kind).collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            ["InvalidField", "MalformedJson", "UnsupportedVersion"]
        );
        let places: Vec<usize> = plan.poison.iter().map(|(n, _)| *n).collect();
        assert!(places.windows(2).all(|w| w[0] < w[1]), "{places:?}");
    }

    #[test]
    fn the_same_seed_draws_the_same_plan_and_every_event_is_valid() {
        let a = Plan::draw("r", 500, 7);
        let b = Plan::draw("r", 500, 7);
        let ids = |p: &Plan| p.events().map(|e| e.event_id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(ids(&a), ids(&Plan::draw("r", 500, 8)));
        for order in &a.orders {
            order.event.encode().expect("a valid event");
        }
        let twice = a.orders.iter().filter(|o| o.twice).count();
        assert_eq!(twice, 25, "5 % of 500 twice");
        assert_eq!(a.poison.len(), 5, "1 % of 500 poison");
        for (_, poison) in &a.poison {
            assert!(orderflow::Event::decode(poison.body.as_bytes()).is_err());
            assert!(
                [
                    "MalformedJson",
                    "UnsupportedVersion",
                    "InvalidField",
                    "MissingField"
                ]
                .contains(&poison.kind),
                "{poison:?}"
            );
        }
    }
}
