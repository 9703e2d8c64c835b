//! The inventory handlers without an emulator: the in-memory adapters of every port (inventory
//! store, idempotency store committing its writes, event sink, dead letters).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use inventory::{InMemoryInventoryStore, ReservationStatus, State, handlers, options};
use orderflow::consume::RecordOutcome;
use orderflow::event::{Event, EventPayload, EventType, examples};
use orderflow::testing::TestConsumer;

struct Service {
    consumer: TestConsumer<State>,
    store: InMemoryInventoryStore,
}

fn service() -> Service {
    let store = InMemoryInventoryStore::new();
    let consumer = TestConsumer::new(
        handlers(State {
            store: Arc::new(store.clone()),
        })
        .with_options(options()),
    )
    .expect("every port given");
    Service { consumer, store }
}

impl Service {
    /// Delivers `event` once (never dead-lettered); says whether SQS would deliver it again.
    async fn comes_back(&self, event: &Event) -> bool {
        let outcome = self.consumer.deliver(event).await.unwrap();
        assert!(
            !matches!(outcome, RecordOutcome::DeadLettered(_)),
            "{outcome:?}"
        );
        outcome.is_failure()
    }

    /// Where the reservation of `placed`'s order stands.
    fn reservation_status(&self, placed: &Event) -> ReservationStatus {
        let reservation = self.store.reservation_of(&placed.aggregate_id);
        reservation.expect("a reservation").status
    }

    fn published_types(&self) -> Vec<EventType> {
        self.consumer
            .published()
            .iter()
            .map(Event::event_type)
            .collect()
    }
}

/// The service with `units` of each SKU of the example order, and that order.
fn stocked(units: u32) -> (Service, Event) {
    let service = service();
    service.store.set_stock("SKU-RED-MUG", units);
    service.store.set_stock("SKU-TEA-100G", units);
    (service, examples::order_placed())
}

fn cancelled(placed: &Event) -> Event {
    examples::caused_by(placed, EventType::OrderCancelled)
}

#[tokio::test]
async fn an_order_in_stock_is_reserved_once_however_often_it_arrives() {
    let (service, placed) = stocked(5);

    assert!(!service.comes_back(&placed).await);
    assert!(!service.comes_back(&placed).await);

    assert_eq!(service.store.stock_of("SKU-RED-MUG"), Some(3));
    assert_eq!(service.store.stock_of("SKU-TEA-100G"), Some(4));
    let reservation = service.store.reservation_of(&placed.aggregate_id).unwrap();
    assert_eq!(reservation.status, ReservationStatus::Reserved);
    // The duplicate republished the same InventoryReserved (same id), nothing else.
    let sent = service.consumer.published();
    assert_eq!(
        service.published_types(),
        [EventType::InventoryReserved, EventType::InventoryReserved]
    );
    assert_eq!(sent[0].event_id, sent[1].event_id);
    assert!(service.consumer.dead_letters().is_empty());
}

#[tokio::test]
async fn an_order_short_of_one_sku_reserves_nothing_and_says_which() {
    let service = service();
    service.store.set_stock("SKU-RED-MUG", 1);
    service.store.set_stock("SKU-TEA-100G", 5);
    let placed = examples::order_placed();

    assert!(!service.comes_back(&placed).await);

    assert_eq!(service.store.stock_of("SKU-RED-MUG"), Some(1));
    assert_eq!(service.store.stock_of("SKU-TEA-100G"), Some(5));
    assert_eq!(
        service.reservation_status(&placed),
        ReservationStatus::Rejected
    );
    let sent = service.consumer.published();
    let EventPayload::InventoryOutOfStock(short) = &sent[0].payload else {
        panic!("{sent:?}")
    };
    assert_eq!(short.shortages.len(), 1);
    assert_eq!(short.shortages[0].sku, "SKU-RED-MUG");
}

#[tokio::test]
async fn a_cancellation_gives_the_stock_back_once_even_delivered_twice() {
    let (service, placed) = stocked(5);
    service.comes_back(&placed).await;

    let cancel = cancelled(&placed);
    assert!(!service.comes_back(&cancel).await);
    assert!(!service.comes_back(&cancel).await);

    assert_eq!(service.store.stock_of("SKU-RED-MUG"), Some(5));
    assert_eq!(service.store.stock_of("SKU-TEA-100G"), Some(5));
    assert_eq!(
        service.reservation_status(&placed),
        ReservationStatus::Released
    );
}

#[tokio::test]
async fn a_cancellation_that_overtakes_its_order_means_nothing_is_ever_reserved_for_it() {
    let (service, placed) = stocked(5);

    assert!(!service.comes_back(&cancelled(&placed)).await);
    assert!(!service.comes_back(&placed).await);

    assert_eq!(service.store.stock_of("SKU-RED-MUG"), Some(5));
    assert_eq!(
        service.reservation_status(&placed),
        ReservationStatus::Cancelled
    );
    assert!(service.consumer.published().is_empty());
}
