//! The analytics handlers without an emulator: the in-memory counters, committed by the
//! in-memory idempotency store with each event's record, all or nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use analytics::{InMemoryCounters, State, handlers};
use orderflow::consume::RecordOutcome;
use orderflow::event::{Event, EventType, examples};
use orderflow::testing::TestConsumer;
use rust_decimal::Decimal;

fn service() -> (TestConsumer<State>, InMemoryCounters) {
    let counters = InMemoryCounters::new();
    let consumer = TestConsumer::new(handlers(State {
        counters: Arc::new(counters.clone()),
    }))
    .expect("every port given");
    (consumer, counters)
}

fn day(event: &Event) -> String {
    event.occurred_at.format("%Y-%m-%d").to_string()
}

fn amounts(pairs: &[(&str, i64, u32)]) -> BTreeMap<String, Decimal> {
    pairs
        .iter()
        .map(|(name, mantissa, scale)| ((*name).to_owned(), Decimal::new(*mantissa, *scale)))
        .collect()
}

#[tokio::test]
async fn a_placed_order_counts_once_however_often_it_arrives() {
    let (consumer, counters) = service();
    let placed = examples::order_placed();

    let first = consumer.deliver(&placed).await.unwrap();
    let again = consumer.deliver(&placed).await.unwrap();

    assert!(
        matches!(
            (&first, &again),
            (RecordOutcome::Handled, RecordOutcome::Duplicate)
        ),
        "{first:?} {again:?}"
    );
    let totals = counters.totals();
    let day = day(&placed);
    assert_eq!(
        totals[&format!("DAY#{day}")],
        amounts(&[("ordersPlaced", 1, 0)])
    );
    assert_eq!(
        totals[&format!("REVENUE#{day}#EUR")],
        amounts(&[("placed", 4048, 2)])
    );
    assert_eq!(
        totals["SKU#SKU-RED-MUG"],
        amounts(&[
            ("units", 2, 0),
            ("revenueEUR", 2500, 2),
            ("orderLines", 1, 0)
        ])
    );
    assert_eq!(totals.len(), 4, "{totals:?}");
    assert!(consumer.published().is_empty());
}

#[tokio::test]
async fn confirmations_and_cancellations_count_on_their_day() {
    let (consumer, counters) = service();
    let confirmed = examples::example(EventType::OrderConfirmed);
    let cancelled = examples::example(EventType::OrderCancelled);

    for event in [&confirmed, &cancelled, &confirmed] {
        let outcome = consumer.deliver(event).await.unwrap();
        assert!(!outcome.is_failure(), "{outcome:?}");
    }

    let totals = counters.totals();
    assert_eq!(
        totals[&format!("DAY#{}", day(&confirmed))],
        amounts(&[("ordersConfirmed", 1, 0), ("ordersCancelled", 1, 0)])
    );
    assert_eq!(
        totals[&format!("REVENUE#{}#EUR", day(&confirmed))],
        amounts(&[("confirmed", 4048, 2)])
    );
}

#[tokio::test]
async fn an_event_it_does_not_count_changes_nothing() {
    let (consumer, counters) = service();

    let outcome = consumer
        .deliver(&examples::example(EventType::PaymentProcessed))
        .await
        .unwrap();

    assert!(!outcome.is_failure(), "{outcome:?}");
    assert!(counters.totals().is_empty());
}
