//! The order service without an emulator: the API and the saga over the in-memory orders
//! table, whose writes the in-memory idempotency store commits with each event's record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use orderflow::consume::RecordOutcome;
use orderflow::event::{Event, EventPayload, EventType, examples};
use orderflow::testing::TestConsumer;
use orders::{InMemoryOrderRepository, OrderRepository, OrderStatus, State, handlers};

fn service() -> (TestConsumer<State>, InMemoryOrderRepository) {
    let table = InMemoryOrderRepository::new();
    let consumer = TestConsumer::new(handlers(State {
        orders: Arc::new(table.clone()),
    }))
    .expect("every port given");
    (consumer, table)
}

async fn status(table: &InMemoryOrderRepository) -> OrderStatus {
    table
        .load("ord-1001")
        .await
        .unwrap()
        .expect("the order")
        .status
}

fn outbox_types(table: &InMemoryOrderRepository) -> Vec<EventType> {
    table.outbox().iter().map(Event::event_type).collect()
}

async fn deliver_all(consumer: &TestConsumer<State>, events: &[&Event]) {
    for event in events {
        let outcome = consumer.deliver(event).await.unwrap();
        assert!(!outcome.is_failure(), "{outcome:?}");
    }
}

#[tokio::test]
async fn payment_and_stock_confirm_the_order_once_in_either_order_however_often_they_arrive() {
    for reversed in [false, true] {
        let (consumer, table) = service();
        let placed = examples::order_placed();
        let (paid, reserved) = (
            examples::caused_by(&placed, EventType::PaymentProcessed),
            examples::caused_by(&placed, EventType::InventoryReserved),
        );
        let (first, second) = if reversed {
            (&reserved, &paid)
        } else {
            (&paid, &reserved)
        };

        deliver_all(&consumer, &[&placed, first, first, second, second, first]).await;

        assert_eq!(status(&table).await, OrderStatus::Confirmed, "{reversed}");
        assert_eq!(outbox_types(&table), [EventType::OrderConfirmed]);
        let order = table.load("ord-1001").await.unwrap().unwrap();
        assert_eq!(order.payment_id.as_deref(), Some("pay-5001"));
        let (_, history) = table.view("ord-1001").await.unwrap().unwrap();
        let steps: Vec<&str> = history.iter().map(|h| h.status.as_str()).collect();
        let middle = if reversed {
            "STOCK_RESERVED"
        } else {
            "PAYMENT_RECEIVED"
        };
        assert_eq!(steps, ["PLACED", middle, "CONFIRMED"]);
    }
}

#[tokio::test]
async fn a_failed_payment_cancels_once_and_nothing_undoes_it() {
    let (consumer, table) = service();
    let placed = examples::order_placed();
    let failed = examples::caused_by(&placed, EventType::PaymentFailed);

    deliver_all(
        &consumer,
        &[
            &placed,
            &failed,
            &failed,
            &examples::caused_by(&placed, EventType::InventoryReserved),
        ],
    )
    .await;

    assert_eq!(status(&table).await, OrderStatus::Cancelled);
    let outbox = table.outbox();
    assert_eq!(outbox_types(&table), [EventType::OrderCancelled]);
    let EventPayload::OrderCancelled(cancelled) = &outbox[0].payload else {
        unreachable!()
    };
    assert_eq!(cancelled.order_id, "ord-1001");
    assert_eq!(outbox[0].correlation_id, failed.correlation_id);
}

#[tokio::test]
async fn an_order_placed_elsewhere_is_recorded_once_and_a_saga_event_before_it_waits() {
    let (consumer, table) = service();
    let placed = examples::order_placed();
    let paid = examples::caused_by(&placed, EventType::PaymentProcessed);

    let early = consumer.deliver(&paid).await.unwrap();
    let RecordOutcome::Failed(error) = &early else {
        panic!("a saga event before its order must come back: {early:?}")
    };
    assert_eq!(error.kind(), "OrderNotYetKnown");
    assert!(
        error.waits_for_another_message(),
        "it waits for its cause past the queue's receive budget"
    );

    deliver_all(&consumer, &[&placed, &placed, &paid]).await;

    let order = table.load("ord-1001").await.unwrap().unwrap();
    assert_eq!(order.placed_by.as_deref(), Some("orders"));
    assert_eq!(order.payment_id.as_deref(), Some("pay-5001"));
    // Its OrderPlaced is out already: the service writes no outbox row for it.
    assert!(table.outbox().is_empty());
    assert!(consumer.dead_letters().is_empty());
}

fn post_order(idempotency_key: &str) -> ApiGatewayV2httpRequest {
    let EventPayload::OrderPlaced(order) = examples::order_placed().payload else {
        unreachable!()
    };
    let body = serde_json::json!({
        "customerId": order.customer_id, "items": order.items, "currency": order.currency,
    });
    let mut request = ApiGatewayV2httpRequest::default();
    request.request_context.http.method = http::Method::POST;
    request.raw_path = Some("/orders".into());
    request
        .headers
        .insert("idempotency-key", idempotency_key.parse().unwrap());
    request.body = Some(body.to_string());
    request
}

#[tokio::test]
async fn the_api_writes_an_order_with_its_order_placed_and_a_retried_request_gets_the_same_order() {
    let table = InMemoryOrderRepository::new();

    let created = orders::api::route(&post_order("key-1"), &table).await;
    let retried = orders::api::route(&post_order("key-1"), &table).await;

    assert_eq!(created.status_code, 201);
    assert_eq!(retried.status_code, 200);
    let outbox = table.outbox();
    assert_eq!(outbox_types(&table), [EventType::OrderPlaced]);
    let order = table.load(&outbox[0].aggregate_id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Placed);
    assert_eq!(order.total.to_string(), "40.48");
}

/// The payload as the runtime reads it (`serde_path_to_error` over serde_json), kept as text.
fn payload(json: &str) -> Box<serde_json::value::RawValue> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(json)).unwrap()
}

async fn invoke(table: &InMemoryOrderRepository, json: &str) -> Result<orders::Answer, String> {
    let consumer = handlers(State {
        orders: Arc::new(table.clone()),
    })
    .with_idempotency(orderflow::idempotency::Idempotency::new(Arc::new(
        orderflow::idempotency::InMemoryIdempotencyStore::new(),
    )));
    let mut context = lambda_runtime::Context::default();
    let in_a_minute = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    context.deadline = in_a_minute
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let event = lambda_runtime::LambdaEvent::new(payload(json), context);
    orders::handle(&consumer, event)
        .await
        .map_err(|err| err.to_string())
}

#[tokio::test]
async fn an_invocation_is_a_batch_or_an_http_request_told_apart_by_its_shape() {
    let table = InMemoryOrderRepository::new();
    // An SQS batch: the saga takes its OrderPlaced (an order another system placed).
    let batch = orderflow::testing::sqs_event::raw(
        &[examples::order_placed()],
        "arn:aws:sqs:us-east-1:123456789012:orders",
    )
    .unwrap();
    let answer = invoke(&table, &serde_json::to_string(&batch).unwrap()).await;
    let Ok(orders::Answer::Batch(response)) = answer else {
        panic!("{answer:?}")
    };
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(status(&table).await, OrderStatus::Placed);
    assert_eq!(
        serde_json::to_value(orders::Answer::Batch(response)).unwrap(),
        serde_json::json!({"batchItemFailures": []}),
        "what the event source reads"
    );
    // An HTTP API request: the order just recorded, as API Gateway asks for it.
    let mut request = ApiGatewayV2httpRequest::default();
    request.request_context.http.method = http::Method::GET;
    request.raw_path = Some("/orders/ord-1001".into());
    request
        .path_parameters
        .insert("orderId".into(), "ord-1001".into());
    let answer = invoke(&table, &serde_json::to_string(&request).unwrap()).await;
    let Ok(orders::Answer::Http(response)) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(response.status_code, 200, "{response:?}");
    let answer = serde_json::to_value(orders::Answer::Http(response)).unwrap();
    assert_eq!(
        answer["statusCode"], 200,
        "what API Gateway reads: {answer}"
    );
    // Anything else is refused, saying what the function takes.
    for other in [r#"{"detail-type": "x"}"#, "[1, 2]", r#""text""#] {
        let answer = invoke(&table, other).await;
        assert!(
            answer
                .as_ref()
                .is_err_and(|err| err.contains("SQS batches and API Gateway HTTP")),
            "{other}: {answer:?}"
        );
    }
}
