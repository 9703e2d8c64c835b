//! The payment handlers, `charge` and `refund`, without an emulator: payments in memory, the
//! simulated gateway behind a counter of its calls. (Every interleaving of the two with crashes
//! between their steps is explored in `interleavings.rs`; here each runs whole, as one delivery.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use orderflow::consume::RecordOutcome;
use orderflow::event::{Event, EventPayload, EventType, examples};
use orderflow::testing::TestConsumer;
use payment::{
    ChargeRequest, GatewayError, InMemoryPaymentStore, PaymentGateway, PaymentStatus, PaymentStore,
    SimulatedGateway, State, handlers,
};
use rust_decimal::Decimal;

/// The simulator, counting what reaches it.
#[derive(Default)]
struct CountingGateway {
    simulator: SimulatedGateway,
    charges: AtomicUsize,
    refunds: AtomicUsize,
}

#[async_trait::async_trait]
impl PaymentGateway for CountingGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<String, GatewayError> {
        self.charges.fetch_add(1, Ordering::SeqCst);
        self.simulator.charge(request).await
    }

    async fn refund(&self, payment_id: &str, amount: Decimal) -> Result<String, GatewayError> {
        self.refunds.fetch_add(1, Ordering::SeqCst);
        self.simulator.refund(payment_id, amount).await
    }
}

struct Service {
    consumer: TestConsumer<State>,
    store: Arc<InMemoryPaymentStore>,
    gateway: Arc<CountingGateway>,
}

fn service() -> Service {
    let store = Arc::new(InMemoryPaymentStore::new());
    let gateway = Arc::new(CountingGateway::default());
    let consumer = TestConsumer::new(handlers(State {
        gateway: gateway.clone(),
        store: store.clone(),
    }))
    .expect("every port given");
    Service {
        consumer,
        store,
        gateway,
    }
}

impl Service {
    async fn status(&self) -> Option<PaymentStatus> {
        let payment = self.store.get("ord-1001").await.unwrap();
        payment.map(|p| p.status)
    }

    fn charges(&self) -> usize {
        self.gateway.charges.load(Ordering::SeqCst)
    }

    fn refunds(&self) -> usize {
        self.gateway.refunds.load(Ordering::SeqCst)
    }
}

/// The example order, placed by `customer`.
fn placed_by(customer: &str) -> Event {
    let mut placed = examples::order_placed();
    let EventPayload::OrderPlaced(order) = &mut placed.payload else {
        unreachable!()
    };
    order.customer_id = customer.to_owned();
    placed
}

fn cancelled(placed: &Event) -> Event {
    examples::caused_by(placed, EventType::OrderCancelled)
}

fn types(events: &[Event]) -> Vec<EventType> {
    events.iter().map(Event::event_type).collect()
}

#[tokio::test]
async fn an_order_is_charged_once_and_announced_with_one_event_id_however_often_it_arrives() {
    let service = service();
    let placed = examples::order_placed();

    let first = service.consumer.deliver(&placed).await.unwrap();
    let again = service.consumer.deliver(&placed).await.unwrap();

    assert!(
        matches!(
            (&first, &again),
            (RecordOutcome::Handled, RecordOutcome::Duplicate)
        ),
        "{first:?} {again:?}"
    );
    assert_eq!(service.charges(), 1);
    assert_eq!(service.status().await, Some(PaymentStatus::Captured));
    let sent = service.consumer.published();
    assert_eq!(
        types(&sent),
        [EventType::PaymentProcessed, EventType::PaymentProcessed]
    );
    assert_eq!(sent[0].event_id, sent[1].event_id);
    let EventPayload::PaymentProcessed(paid) = &sent[0].payload else {
        unreachable!()
    };
    assert_eq!(paid.amount, Decimal::new(4048, 2));
    assert_eq!(paid.payment_id, "pay-ord-1001");
}

#[tokio::test]
async fn a_declined_card_is_recorded_and_announced_as_payment_failed() {
    let service = service();

    let outcome = service
        .consumer
        .deliver(&placed_by("decline-cust-7"))
        .await
        .unwrap();

    assert!(matches!(outcome, RecordOutcome::Handled), "{outcome:?}");
    assert_eq!(service.status().await, Some(PaymentStatus::Declined));
    let sent = service.consumer.published();
    let EventPayload::PaymentFailed(failed) = &sent[0].payload else {
        panic!("{sent:?}")
    };
    assert_eq!(failed.reason_code, "card_declined");
}

#[tokio::test]
async fn a_gateway_outage_comes_back_and_the_next_attempt_captures_once() {
    let service = service();
    let placed = placed_by("flaky-cust-9");

    let outage = service.consumer.deliver(&placed).await.unwrap();
    let RecordOutcome::Failed(error) = &outage else {
        panic!("an outage must come back, not be dead-lettered: {outage:?}")
    };
    assert!(error.is_retryable(), "{error}");
    assert!(service.consumer.published().is_empty());

    let retried = service.consumer.deliver(&placed).await.unwrap();

    assert!(matches!(retried, RecordOutcome::Handled), "{retried:?}");
    assert_eq!(service.status().await, Some(PaymentStatus::Captured));
    assert_eq!(
        types(&service.consumer.published()),
        [EventType::PaymentProcessed]
    );
}

#[tokio::test]
async fn an_order_cancelled_before_its_charge_is_voided_and_never_charged() {
    let service = service();
    let placed = examples::order_placed();

    service.consumer.deliver(&cancelled(&placed)).await.unwrap();
    let late = service.consumer.deliver(&placed).await.unwrap();

    assert!(matches!(late, RecordOutcome::Handled), "{late:?}");
    assert_eq!(service.charges(), 0);
    assert_eq!(service.status().await, Some(PaymentStatus::Voided));
    assert!(service.consumer.published().is_empty());
}

#[tokio::test]
async fn a_captured_order_that_is_cancelled_is_refunded_once() {
    let service = service();
    let placed = examples::order_placed();
    service.consumer.deliver(&placed).await.unwrap();

    let cancel = cancelled(&placed);
    service.consumer.deliver(&cancel).await.unwrap();
    service.consumer.deliver(&cancel).await.unwrap();

    assert_eq!(service.refunds(), 1);
    let payment = service.store.get("ord-1001").await.unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Refunded);
    assert_eq!(payment.refund_id.as_deref(), Some("ref-pay-ord-1001"));
}
