//! Journeys that must end right: an order another system publishes straight to the topic
//! finishes its saga; saga events that overtake their order wait for it; a consumer whose
//! table is missing says so in its DLQ at once; the outbox relay forwards what was written.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use orderflow::Event;
use orderflow::consume::{ConsumerEnv, Invocation, RecordError, RecordOutcome};
use orderflow::event::{EventPayload, InventoryReserved, PaymentProcessed, ReservedItem, examples};
use orderflow_tests::flow::Flow;
use orderflow_tests::streams::StreamReader;
use orderflow_tests::{DELIVERY_DEADLINE, aws_cli, emulator, sqs_event_of};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:orders";

/// An `OrderPlaced` as another shop would publish it: its own ids and source.
fn external_order(order_id: &str, sku: &str, quantity: u32) -> Event {
    let mut event = examples::order_placed();
    event.event_id = uuid::Uuid::new_v4();
    event.correlation_id = format!("corr-{order_id}");
    event.source = "partner-shop".into();
    event.aggregate_id = order_id.into();
    if let EventPayload::OrderPlaced(order) = &mut event.payload {
        order.order_id = order_id.into();
        order.customer_id = format!("cust-{order_id}");
        order.items.truncate(1);
        order.items[0].sku = sku.into();
        order.items[0].quantity = quantity;
        order.total = order.items[0].unit_price * Decimal::from(quantity);
    }
    event
}

async fn item(flow: &Flow, table: &str, key: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let mut request = flow
        .aws
        .dynamodb
        .get_item()
        .table_name(table)
        .consistent_read(true);
    for (name, value) in key {
        request = request.key(*name, AttributeValue::S((*value).to_owned()));
    }
    let out = request.send().await.expect("GetItem");
    out.item()
        .map(|i| serde_dynamo::from_item(i.clone()).expect("item"))
        .unwrap_or_default()
}

async fn assert_every_dlq_empty(flow: &Flow) {
    for wired in &flow.services {
        let (name, dlq) = (wired.service.name, &wired.dlq);
        assert_eq!(
            flow.aws.queue_depth(dlq).await,
            0,
            "{name} DLQ is not empty"
        );
    }
    assert_eq!(
        flow.aws.queue_depth(&flow.relay_failures).await,
        0,
        "relay failures"
    );
}

#[tokio::test]
async fn orders_another_system_publishes_to_the_topic_finish_their_saga() {
    let mut flow = Flow::new(Arc::new(emulator().await)).await;
    let store =
        inventory::DynamoInventoryStore::new(flow.aws.dynamodb.clone(), flow.table("inventory"));
    store.set_stock("SKU-MUG", 10).await.expect("seed");
    store.set_stock("SKU-RARE", 1).await.expect("seed");
    let in_stock = external_order("ext-in-stock", "SKU-MUG", 2);
    let short = external_order("ext-short", "SKU-RARE", 5);

    // GIVEN one order published with `aws sns publish`, exactly as README tells other systems
    let dir = std::env::temp_dir().join(orderflow_tests::unique_name("external"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("order.json");
    std::fs::write(&file, in_stock.encode().expect("valid")).expect("write");
    let attributes = json!({
        "eventType": {"DataType": "String", "StringValue": "OrderPlaced"},
        "eventVersion": {"DataType": "Number", "StringValue": "2"},
        "correlationId": {"DataType": "String", "StringValue": in_stock.correlation_id},
    });
    let out = Command::new(aws_cli())
        .args(["sns", "publish", "--topic-arn", &flow.topic, "--message"])
        .arg(format!("file://{}", file.display()))
        .args(["--message-attributes", &attributes.to_string()])
        .args([
            "--region",
            "us-east-1",
            "--endpoint-url",
            &flow.aws.endpoint,
        ])
        .output()
        .expect("aws sns publish");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // AND one with the SDK (the same attributes, set by the library's publisher)
    orderflow::Publisher::new(flow.aws.sns.clone(), &flow.topic)
        .publish(&short)
        .await
        .expect("publish");

    // WHEN the services run until nothing moves
    flow.run(1).await;

    // THEN the one with stock is confirmed, the other cancelled with its payment refunded
    let (status, view) = flow.http("GET", "/orders/ext-in-stock", None, None).await;
    assert_eq!(
        status, 200,
        "the orders service knows the external order: {view}"
    );
    assert_eq!(view["status"], "CONFIRMED", "{view}");
    assert_eq!(view["placedBy"], "partner-shop");
    let history: Vec<&str> = view["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(history.first(), Some(&"PLACED"));
    assert_eq!(history.last(), Some(&"CONFIRMED"));
    let (_, view) = flow.http("GET", "/orders/ext-short", None, None).await;
    assert_eq!(view["status"], "CANCELLED", "{view}");
    let payment = item(&flow, flow.table("payments"), &[("orderId", "ext-short")]).await;
    assert_eq!(payment["status"], "REFUNDED");
    assert_eq!(payment["refundId"], "ref-pay-ext-short");
    let captured = item(
        &flow,
        flow.table("payments"),
        &[("orderId", "ext-in-stock")],
    )
    .await;
    assert_eq!(captured["status"], "CAPTURED");
    let stock = item(&flow, flow.table("inventory"), &[("pk", "SKU#SKU-MUG")]).await;
    assert_eq!(stock["stock"], json!(8));
    // The orders service re-published no OrderPlaced of its own for them.
    let snapshot = flow.snapshot().await;
    let placed_again = snapshot["orders"].iter().any(|row| {
        row["sk"].as_str().is_some_and(|s| s.starts_with("OUTBOX#"))
            && row["eventType"] == "OrderPlaced"
    });
    assert!(!placed_again);
    assert_every_dlq_empty(&flow).await;
}

/// The follow-ups payment and inventory would publish for `order`.
fn saga_events(order: &Event) -> Vec<Event> {
    let EventPayload::OrderPlaced(placed) = &order.payload else {
        unreachable!("an OrderPlaced")
    };
    vec![
        Event::follow_up(
            order,
            "payment",
            PaymentProcessed {
                order_id: placed.order_id.clone(),
                payment_id: format!("pay-{}", placed.order_id),
                amount: placed.total,
                currency: placed.currency.clone(),
            },
            0,
        ),
        Event::follow_up(
            order,
            "inventory",
            InventoryReserved {
                order_id: placed.order_id.clone(),
                reservation_id: format!("res-{}", placed.order_id),
                items: placed
                    .items
                    .iter()
                    .map(|i| ReservedItem {
                        sku: i.sku.clone(),
                        quantity: i.quantity,
                    })
                    .collect(),
            },
            0,
        ),
    ]
}

#[tokio::test]
async fn saga_events_before_their_order_wait_for_it_and_end_the_same() {
    let aws = Arc::new(emulator().await);
    let (in_order, reversed) = (Flow::new(aws.clone()).await, Flow::new(aws).await);
    let order = external_order("ext-early", "SKU-MUG", 1);
    let saga = saga_events(&order);

    // Delivered in the natural order: OrderPlaced, then the reports.
    let orders = in_order.consumer::<orders::State>("orders");
    for event in std::iter::once(&order).chain(&saga) {
        let outcome = orders
            .process(
                &sqs_event_of(std::slice::from_ref(event), QUEUE),
                &Invocation::default(),
            )
            .await;
        assert!(
            matches!(outcome.records[0].1, RecordOutcome::Handled),
            "{outcome:?}"
        );
    }

    // The reports first: each waits (transient), nothing is dead-lettered ...
    let orders = reversed.consumer::<orders::State>("orders");
    for event in &saga {
        let outcome = orders
            .process(
                &sqs_event_of(std::slice::from_ref(event), QUEUE),
                &Invocation::default(),
            )
            .await;
        match &outcome.records[0].1 {
            RecordOutcome::Failed(err @ RecordError::Handler { .. }) => {
                assert!(err.is_retryable());
                assert_eq!(err.kind(), "OrderNotYetKnown");
            }
            other => panic!("expected a wait, got {other:?}"),
        }
    }
    // ... then the order, then the reports again, as SQS redelivers them.
    for event in std::iter::once(&order).chain(&saga) {
        let outcome = orders
            .process(
                &sqs_event_of(std::slice::from_ref(event), QUEUE),
                &Invocation::default(),
            )
            .await;
        assert!(
            matches!(outcome.records[0].1, RecordOutcome::Handled),
            "{outcome:?}"
        );
    }

    let (_, view) = reversed.http("GET", "/orders/ext-early", None, None).await;
    assert_eq!(view["status"], "CONFIRMED");
    let (a, b) = (in_order.snapshot().await, reversed.snapshot().await);
    assert_eq!(
        a["orders"], b["orders"],
        "the same order, history and outbox either way"
    );
    for flow in [&in_order, &reversed] {
        assert_every_dlq_empty(flow).await;
    }
}

#[tokio::test]
async fn a_consumer_whose_table_does_not_exist_dead_letters_at_once_naming_the_table() {
    let aws = emulator().await;
    let (queue, dlq) = aws.queue_with_dlq("no-table", 5, 30).await;
    let idempotency = aws.table("no-table-idempotency", "id").await;
    let missing = orderflow_tests::unique_name("payments-missing");
    let consumer = payment::consumer(
        &aws.config,
        payment::Config {
            consumer: ConsumerEnv {
                idempotency_table: idempotency,
                events_topic_arn: None,
                dead_letter_queue_url: None,
                metrics: Default::default(),
            },
            payments_table: missing.clone(),
            amount_limit: Decimal::from(10_000),
        },
    );
    aws.sqs
        .send_message()
        .queue_url(&queue.url)
        .message_body(examples::order_placed().encode().expect("valid"))
        .send()
        .await
        .expect("SendMessage");
    let (event, messages) = aws.sqs_event(&queue, 1).await;
    let outcome = consumer.process(&event, &Invocation::default()).await;
    assert!(
        matches!(outcome.records[0].1, RecordOutcome::DeadLettered(_)),
        "{outcome:?}"
    );
    aws.acknowledge(&queue, &messages, &outcome.response())
        .await;
    let dead = aws.receive(&dlq, 1, DELIVERY_DEADLINE).await;
    assert_eq!(dead.len(), 1, "on the first attempt");
    let sqs = aws.receive_raw(&queue, 1, Duration::from_millis(300)).await;
    assert!(sqs.is_empty(), "nothing left to retry");
    let attributes = &dead[0].attributes;
    assert_eq!(attributes["errorKind"].1, "AwsPermanent");
    let message = &attributes["errorMessage"].1;
    assert!(message.contains(&missing), "names the table: {message}");
    assert!(
        message.contains("DynamoDB PutItem"),
        "names the operation: {message}"
    );
}

#[tokio::test]
async fn the_relay_forwards_what_was_written_byte_for_byte_and_sets_aside_what_it_cannot() {
    let flow = Flow::new(Arc::new(emulator().await)).await;
    let everything = flow.aws.queue("relay-everything", false).await;
    flow.aws
        .subscribe(&flow.topic, &everything, true, None)
        .await;
    let mut stream =
        StreamReader::open(&flow.aws.config, &flow.aws.dynamodb, flow.table("orders")).await;

    // GIVEN rows a newer writer wrote: an optional field this code does not know, and a later
    // eventVersion; then one that can never be published (over SNS's 256 KiB); then a plain one
    let base = serde_json::to_value(external_order("ord-relay", "SKU-MUG", 1)).expect("json");
    let mut unknown_field = base.clone();
    unknown_field["eventId"] = json!(uuid::Uuid::new_v4());
    unknown_field["data"]["giftWrap"] = json!({"paper": "gold", "note": "  spaced  "});
    let mut future = base.clone();
    future["eventId"] = json!(uuid::Uuid::new_v4());
    future["eventVersion"] = json!(3);
    future["data"]["loyaltyTier"] = json!("gold");
    let mut oversize = base.clone();
    oversize["eventId"] = json!(uuid::Uuid::new_v4());
    oversize["data"]["note"] = json!("x".repeat(300 * 1024));
    let mut plain = base;
    plain["eventId"] = json!(uuid::Uuid::new_v4());
    // Spelled by hand, with spacing no serializer of ours writes, to see that it is kept.
    let bodies: Vec<String> = [&unknown_field, &future, &oversize, &plain]
        .iter()
        .map(|v| serde_json::to_string_pretty(v).expect("json"))
        .collect();
    for body in &bodies {
        let value: Value = serde_json::from_str(body).expect("json");
        let event_id = value["eventId"].as_str().expect("id");
        flow.aws
            .dynamodb
            .put_item()
            .table_name(flow.table("orders"))
            .item("pk", AttributeValue::S("ORDER#ord-relay".into()))
            .item("sk", AttributeValue::S(format!("OUTBOX#{event_id}")))
            .item("event", AttributeValue::S(body.clone()))
            .item("status", AttributeValue::S("PENDING".into()))
            .send()
            .await
            .expect("PutItem");
    }

    // WHEN the relay handles the stream
    let batch = stream.next_batch().await;
    assert_eq!(batch.records.len(), 4);
    let response = flow.relay.handle(&batch, "journey").await;

    // THEN nothing holds the shard, the three publishable rows went out exactly as written
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let received = flow.aws.receive(&everything, 3, DELIVERY_DEADLINE).await;
    let got: Vec<&str> = received.iter().map(|m| m.body.as_str()).collect();
    for expected in [&bodies[0], &bodies[1], &bodies[3]] {
        assert!(
            got.contains(&expected.as_str()),
            "byte for byte: {expected}"
        );
    }
    let future_copy = received
        .iter()
        .find(|m| m.body == bodies[1])
        .expect("the v3 event");
    assert_eq!(future_copy.attributes["eventVersion"].1, "3");
    // AND the oversize one is set aside with its reason, its row still PENDING
    let aside = flow
        .aws
        .receive(&flow.relay_failures, 1, DELIVERY_DEADLINE)
        .await;
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].attributes["errorKind"].1, "PublishRejected");
    assert!(
        aside[0].attributes["errorMessage"]
            .1
            .contains("262144-byte SNS message limit"),
        "{:?}",
        aside[0].attributes
    );
    let oversize_id = oversize["eventId"].as_str().expect("id");
    let row = item(
        &flow,
        flow.table("orders"),
        &[
            ("pk", "ORDER#ord-relay"),
            ("sk", &format!("OUTBOX#{oversize_id}")),
        ],
    )
    .await;
    assert_eq!(row["status"], "PENDING");
}
