//! The notification handlers without an emulator: contacts and sent messages in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use notification::{InMemoryNotifications, State, handlers};
use orderflow::consume::RecordOutcome;
use orderflow::event::{EventPayload, EventType, examples};
use orderflow::testing::TestConsumer;

fn service() -> (TestConsumer<State>, InMemoryNotifications) {
    let book = InMemoryNotifications::new();
    let consumer = TestConsumer::new(handlers(State {
        sender: Arc::new(book.clone()),
        contacts: Arc::new(book.clone()),
    }))
    .expect("every port given");
    (consumer, book)
}

#[tokio::test]
async fn the_customer_hears_once_about_each_step_however_often_it_arrives() {
    let (consumer, book) = service();
    let placed = examples::order_placed();
    let confirmed = examples::caused_by(&placed, EventType::OrderConfirmed);

    for event in [&placed, &placed, &confirmed, &confirmed] {
        let outcome = consumer.deliver(event).await.unwrap();
        assert!(!outcome.is_failure(), "{outcome:?}");
    }

    let sent = book.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|m| m.to == "ada@example.com"));
    let subjects: Vec<&str> = sent.iter().map(|m| m.subject.as_str()).collect();
    assert!(
        subjects.contains(&"We received your order ord-1001"),
        "{subjects:?}"
    );
    let confirmation = sent
        .iter()
        .find(|m| m.message_id == confirmed.event_id.to_string())
        .expect("the confirmation");
    assert_eq!(confirmation.order_id, "ord-1001");
}

#[tokio::test]
async fn a_cancellation_before_its_order_waits_for_it_and_is_never_dead_lettered() {
    let (consumer, book) = service();
    let placed = examples::order_placed();
    let cancelled = examples::caused_by(&placed, EventType::OrderCancelled);

    let early = consumer.deliver(&cancelled).await.unwrap();
    let RecordOutcome::Failed(error) = &early else {
        panic!("a cancellation before its order must come back: {early:?}")
    };
    assert_eq!(error.kind(), "ContactNotYetKnown");
    assert!(
        error.waits_for_another_message(),
        "it waits for its cause past the queue's receive budget"
    );
    assert!(book.sent().is_empty());

    consumer.deliver(&placed).await.unwrap();
    let retried = consumer.deliver(&cancelled).await.unwrap();

    assert!(matches!(retried, RecordOutcome::Handled), "{retried:?}");
    assert_eq!(book.sent().len(), 2);
    assert!(consumer.dead_letters().is_empty());
}

#[tokio::test]
async fn an_order_without_an_email_address_is_handled_and_nobody_is_written_to() {
    let (consumer, book) = service();
    let mut placed = examples::order_placed();
    let EventPayload::OrderPlaced(order) = &mut placed.payload else {
        unreachable!()
    };
    order.customer_email = None;

    let outcome = consumer.deliver(&placed).await.unwrap();

    assert!(matches!(outcome, RecordOutcome::Handled), "{outcome:?}");
    assert!(book.sent().is_empty());
}
