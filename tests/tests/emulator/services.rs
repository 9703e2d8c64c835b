//! Each service on its own, on the emulator, for what the happy flow does not reach.

use std::sync::Arc;

use orderflow::Event;
use orderflow::consume::{Invocation, RecordOutcome};
use orderflow::event::{CancellationReason, EventPayload, EventType, OrderCancelled, examples};
use orderflow_tests::flow::Flow;
use orderflow_tests::{ABSENCE_GRACE, emulator, sqs_event_of};
use serde_json::json;

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:service";

fn placed(order_id: &str, customer: &str, sku: &str, quantity: u32) -> Event {
    let mut event = examples::order_placed();
    event.aggregate_id = order_id.into();
    if let EventPayload::OrderPlaced(order) = &mut event.payload {
        order.order_id = order_id.into();
        order.customer_id = customer.into();
        order.items.truncate(1);
        order.items[0].sku = sku.into();
        order.items[0].quantity = quantity;
        order.total = order.items[0].unit_price * rust_decimal::Decimal::from(quantity);
    }
    event
}

fn cancelled(cause: &Event) -> Event {
    Event::caused_by(
        cause,
        "orders",
        OrderCancelled {
            order_id: cause.aggregate_id.clone(),
            reason: CancellationReason::OutOfStock,
            detail: None,
        },
    )
}

fn only(outcome: &orderflow::consume::BatchOutcome) -> &RecordOutcome {
    &outcome.records[0].1
}

#[tokio::test]
async fn the_orders_api_reports_every_field_error_and_a_retried_post_returns_the_same_order() {
    let flow = Flow::new(Arc::new(emulator().await)).await;
    let bad = json!({"customerId": "", "currency": "euro", "items": [{"sku": "A", "quantity": 0, "unitPrice": "1.00"}]});
    let (status, body) = flow.http("POST", "/orders", None, Some(&bad)).await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["customerId", "items[0].quantity", "currency"]);
    let (status, body) = flow
        .http("POST", "/orders", None, Some(&json!({"customerId": 7})))
        .await;
    assert_eq!(
        (status, body["errors"][0]["field"].clone()),
        (400, json!("customerId"))
    );

    let good = json!({"customerId": "c-1", "currency": "EUR", "items": [{"sku": "A", "quantity": 2, "unitPrice": "1.25"}]});
    let (first, created) = flow
        .http("POST", "/orders", Some("retry-me"), Some(&good))
        .await;
    let (second, again) = flow
        .http("POST", "/orders", Some("retry-me"), Some(&good))
        .await;
    assert_eq!((first, second), (201, 200));
    assert_eq!(created["orderId"], again["orderId"]);
    assert_eq!(created["total"], "2.50");
    let snapshot = flow.snapshot().await;
    let outbox = snapshot["orders"]
        .iter()
        .filter(|i| i["sk"].as_str().is_some_and(|s| s.starts_with("OUTBOX#")))
        .count();
    assert_eq!(outbox, 1, "a retried POST writes no second event");

    // The same key for another order is a conflict; another customer's same key is theirs.
    let mut other = good.clone();
    other["items"][0]["quantity"] = json!(3);
    assert_eq!(
        flow.http("POST", "/orders", Some("retry-me"), Some(&other))
            .await
            .0,
        409
    );
    let mut someone_else = good.clone();
    someone_else["customerId"] = json!("c-2");
    let (status, theirs) = flow
        .http("POST", "/orders", Some("retry-me"), Some(&someone_else))
        .await;
    assert_eq!(status, 201);
    assert_ne!(theirs["orderId"], created["orderId"]);

    assert_eq!(
        flow.http("GET", "/orders/ord-nope", None, None).await.0,
        404
    );
    assert_eq!(flow.http("DELETE", "/orders", None, None).await.0, 405);
    assert_eq!(flow.http("GET", "/carts", None, None).await.0, 404);
}

#[tokio::test]
async fn payment_never_charges_an_order_cancelled_before_it_was_charged() {
    let flow = Flow::new(Arc::new(emulator().await)).await;
    let order = placed("ord-early-cancel", "cust-1", "SKU-A", 1);
    let payment = flow.consumer::<payment::State>("payment");
    // GIVEN the cancellation overtakes the order on the payment queue
    let outcome = payment
        .process(
            &sqs_event_of(&[cancelled(&order)], QUEUE),
            &Invocation::default(),
        )
        .await;
    assert!(
        matches!(only(&outcome), RecordOutcome::Handled),
        "{outcome:?}"
    );
    // WHEN the order arrives after all
    let outcome = payment
        .process(
            &sqs_event_of(std::slice::from_ref(&order), QUEUE),
            &Invocation::default(),
        )
        .await;
    assert!(
        matches!(only(&outcome), RecordOutcome::Handled),
        "{outcome:?}"
    );
    // THEN it is not charged, and nothing is announced
    let row = flow
        .aws
        .dynamodb
        .get_item()
        .table_name(flow.table("payments"))
        .key(
            "orderId",
            aws_sdk_dynamodb::types::AttributeValue::S("ord-early-cancel".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(row.item().unwrap()["status"].as_s().unwrap(), "VOIDED");
    let payment_queue = &flow.service("orders").queue;
    assert!(
        flow.aws
            .receive_for(payment_queue, ABSENCE_GRACE)
            .await
            .is_empty(),
        "no PaymentProcessed or PaymentFailed"
    );
}

#[tokio::test]
async fn inventory_releases_a_reservation_exactly_once_and_names_short_skus() {
    let flow = Flow::new(Arc::new(emulator().await)).await;
    let store =
        inventory::DynamoInventoryStore::new(flow.aws.dynamodb.clone(), flow.table("inventory"));
    store.set_stock("SKU-A", 3).await.unwrap();
    let stock = || async {
        let out = flow
            .aws
            .dynamodb
            .get_item()
            .table_name(flow.table("inventory"))
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("SKU#SKU-A".into()),
            )
            .send()
            .await
            .unwrap();
        out.item().unwrap()["stock"]
            .as_n()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    let consumer = flow.consumer::<inventory::State>("inventory");
    let order = placed("ord-r", "cust-1", "SKU-A", 2);
    consumer
        .process(
            &sqs_event_of(std::slice::from_ref(&order), QUEUE),
            &Invocation::default(),
        )
        .await;
    assert_eq!(stock().await, 1);

    // Two distinct cancellation events (say, one from a retry of the saga): one release.
    for _ in 0..2 {
        let outcome = consumer
            .process(
                &sqs_event_of(&[cancelled(&order)], QUEUE),
                &Invocation::default(),
            )
            .await;
        assert!(
            matches!(only(&outcome), RecordOutcome::Handled),
            "{outcome:?}"
        );
    }
    assert_eq!(stock().await, 3);

    // One SKU on two lines: read once, reserved as one (BatchGetItem refuses duplicate keys).
    let mut twice = placed("ord-twice", "cust-1", "SKU-A", 1);
    if let EventPayload::OrderPlaced(order) = &mut twice.payload {
        order.items.push(order.items[0].clone());
        order.total = order.items[0].unit_price * rust_decimal::Decimal::from(2);
    }
    let outcome = consumer
        .process(
            &sqs_event_of(&[twice.clone()], QUEUE),
            &Invocation::default(),
        )
        .await;
    assert!(
        matches!(only(&outcome), RecordOutcome::Handled),
        "{outcome:?}"
    );
    assert_eq!(stock().await, 1);
    consumer
        .process(
            &sqs_event_of(&[cancelled(&twice)], QUEUE),
            &Invocation::default(),
        )
        .await;
    assert_eq!(stock().await, 3);

    // Too many: nothing reserved, the shortage named on the topic.
    let greedy = placed("ord-greedy", "cust-1", "SKU-A", 4);
    consumer
        .process(&sqs_event_of(&[greedy], QUEUE), &Invocation::default())
        .await;
    assert_eq!(stock().await, 3);
    let orders_queue = &flow.service("orders").queue;
    let published = flow
        .aws
        .receive(orders_queue, 2, orderflow_tests::DELIVERY_DEADLINE)
        .await;
    let short = published
        .iter()
        .map(|m| m.event())
        .find(|e| e.event_type() == EventType::InventoryOutOfStock)
        .expect("InventoryOutOfStock");
    let EventPayload::InventoryOutOfStock(short) = short.payload else {
        unreachable!()
    };
    assert_eq!(
        (
            short.shortages[0].sku.as_str(),
            short.shortages[0].requested,
            short.shortages[0].available
        ),
        ("SKU-A", 4, 3)
    );
}

#[tokio::test]
async fn notification_waits_for_the_contact_and_sends_each_message_once() {
    let flow = Flow::new(Arc::new(emulator().await)).await;
    let consumer = flow.consumer::<notification::State>("notification");
    let order = placed("ord-n", "cust-1", "SKU-A", 1);
    let confirmed = Event::caused_by(
        &order,
        "orders",
        examples::example(EventType::OrderConfirmed).payload,
    );
    let mut confirmed = confirmed;
    confirmed.aggregate_id = "ord-n".into();
    if let EventPayload::OrderConfirmed(c) = &mut confirmed.payload {
        c.order_id = "ord-n".into();
    }
    // The confirmation overtakes the order: retried later, not lost.
    let outcome = consumer
        .process(
            &sqs_event_of(std::slice::from_ref(&confirmed), QUEUE),
            &Invocation::default(),
        )
        .await;
    assert!(
        matches!(only(&outcome), RecordOutcome::Failed(err) if err.is_retryable()),
        "{outcome:?}"
    );
    consumer
        .process(&sqs_event_of(&[order], QUEUE), &Invocation::default())
        .await;
    for _ in 0..2 {
        let outcome = consumer
            .process(
                &sqs_event_of(std::slice::from_ref(&confirmed), QUEUE),
                &Invocation::default(),
            )
            .await;
        assert!(!only(&outcome).is_failure(), "{outcome:?}");
    }
    let snapshot = flow.snapshot().await;
    let messages: Vec<&str> = snapshot["notifications"]
        .iter()
        .filter_map(|n| n["subject"].as_str())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.contains(&"Your order ord-n is confirmed"));
}
