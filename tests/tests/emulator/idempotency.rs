//! Idempotency against DynamoDB in the emulator: one conditional write per acquisition, the
//! handler exactly once under concurrency, crash take-over, expiry, payload mismatch, and the
//! one-request transaction mode.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use orderflow::consume::{
    Consumer, HandlerError, Invocation, Message, Outcome, RecordError, RecordOutcome,
};
use orderflow::event::{EventPayload, OrderPlaced, PaymentProcessed, examples};
use orderflow::idempotency::{
    Acquired, Claim, DynamoIdempotencyStore, Idempotency, IdempotencyError, IdempotencyStore,
    Status, payload_hash,
};
use orderflow::{Event, Publisher};
use orderflow_tests::interceptors::{CountRequests, dynamodb_with};
use orderflow_tests::{DELIVERY_DEADLINE, Emulator, emulator};
use serde_json::json;

#[derive(Default)]
struct Runs(AtomicUsize);

/// Counts runs; slow enough that concurrent deliveries overlap.
async fn slow_charge(
    message: Message<OrderPlaced>,
    runs: Arc<Runs>,
) -> Result<Outcome, HandlerError> {
    runs.0.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(Outcome::done().with_result(json!({"order": message.data.order_id})))
}

fn order_event(order_id: &str, sku: &str, quantity: u32) -> Event {
    let mut event = examples::order_placed();
    event.aggregate_id = order_id.into();
    if let EventPayload::OrderPlaced(order) = &mut event.payload {
        order.order_id = order_id.into();
        order.items.truncate(1);
        order.items[0].sku = sku.into();
        order.items[0].quantity = quantity;
        order.total = order.items[0].unit_price * rust_decimal::Decimal::from(quantity);
    }
    event
}

/// One SQS record carrying `event`, as Lambda would deliver it, with `message_id`.
fn sqs_event(event: &Event, message_id: &str) -> SqsEvent {
    let mut batch = orderflow_tests::sqs_event_of(
        std::slice::from_ref(event),
        "arn:aws:sqs:us-east-1:123456789012:payment",
    );
    batch.records[0].message_id = Some(message_id.to_owned());
    batch
}

async fn store(aws: &Emulator) -> (DynamoIdempotencyStore, String) {
    let table = aws.table("idempotency", "id").await;
    (
        DynamoIdempotencyStore::new(aws.dynamodb.clone(), &table),
        table,
    )
}

fn claim(event: &Event, now_ms: i64, expires_at: i64, in_progress_until: i64) -> Claim {
    Claim {
        owner: format!("invocation-{now_ms}"),
        key: format!("payment#{}", event.event_id),
        payload_hash: payload_hash(event),
        now_ms,
        expires_at,
        in_progress_until,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn stored_status(aws: &Emulator, table: &str, key: &str) -> Option<String> {
    let out = aws
        .dynamodb
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(key.into()))
        .send()
        .await
        .unwrap();
    out.item()
        .and_then(|i| i.get("status"))
        .and_then(|s| s.as_s().ok())
        .cloned()
}

#[tokio::test]
async fn twenty_concurrent_deliveries_run_the_handler_exactly_once() {
    let aws = emulator().await;
    let (store, _) = store(&aws).await;
    let consumer = Arc::new(
        Consumer::new("payment", Runs::default())
            .on(slow_charge)
            .with_idempotency(Idempotency::new(Arc::new(store))),
    );
    let event = order_event("ord-c", "SKU-1", 1);

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let consumer = consumer.clone();
            let batch = sqs_event(&event, &format!("m{i}"));
            tokio::spawn(async move { consumer.process(&batch, &Invocation::default()).await })
        })
        .collect();
    let mut handled = 0;
    for task in tasks {
        let outcome = task.await.unwrap();
        match &outcome.records[0].1 {
            RecordOutcome::Handled => handled += 1,
            RecordOutcome::Duplicate | RecordOutcome::Failed(RecordError::InProgress { .. }) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(handled, 1);
    assert_eq!(
        consumer.state().0.load(Ordering::SeqCst),
        1,
        "the handler ran exactly once"
    );
}

#[tokio::test]
async fn a_crashed_holder_is_taken_over_once_its_deadline_passed() {
    let aws = emulator().await;
    let (store, table) = store(&aws).await;
    let event = order_event("ord-crash", "SKU-1", 1);
    let now = now_ms();
    // GIVEN an invocation that claimed the key and died; its deadline passed a second ago
    assert_eq!(
        store
            .acquire(&claim(&event, now - 5_000, now / 1000 + 3600, now - 1_000))
            .await
            .unwrap(),
        Acquired::Started
    );

    let consumer = Consumer::new("payment", Runs::default())
        .on(slow_charge)
        .with_idempotency(Idempotency::new(Arc::new(store.clone())));
    let outcome = consumer
        .process(&sqs_event(&event, "m"), &Invocation::default())
        .await;
    assert!(
        matches!(outcome.records[0].1, RecordOutcome::Handled),
        "{outcome:?}"
    );
    let key = format!("payment#{}", event.event_id);
    assert_eq!(
        stored_status(&aws, &table, &key).await.as_deref(),
        Some("COMPLETED")
    );

    // A live holder is not taken over: the delivery is retried later.
    let other = order_event("ord-live", "SKU-1", 1);
    store
        .acquire(&claim(&other, now, now / 1000 + 3600, now + 60_000))
        .await
        .unwrap();
    let outcome = consumer
        .process(&sqs_event(&other, "m2"), &Invocation::default())
        .await;
    match &outcome.records[0].1 {
        RecordOutcome::Failed(err @ RecordError::InProgress { .. }) => assert!(err.is_retryable()),
        other => panic!("{other:?}"),
    }
    assert_eq!(consumer.state().0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_expired_completed_record_is_processed_again() {
    let aws = emulator().await;
    let (store, _) = store(&aws).await;
    let event = order_event("ord-exp", "SKU-1", 1);
    let now = now_ms();
    let old = claim(&event, now - 7_200_000, now / 1000 - 3600, now - 7_100_000);
    assert_eq!(store.acquire(&old).await.unwrap(), Acquired::Started);
    store.complete(&old, "{}").await.unwrap();

    let consumer = Consumer::new("payment", Runs::default())
        .on(slow_charge)
        .with_idempotency(Idempotency::new(Arc::new(store)));
    let outcome = consumer
        .process(&sqs_event(&event, "m"), &Invocation::default())
        .await;
    assert!(
        matches!(outcome.records[0].1, RecordOutcome::Handled),
        "{outcome:?}"
    );
    assert_eq!(consumer.state().0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_same_event_id_with_other_data_is_a_permanent_payload_mismatch() {
    let aws = emulator().await;
    let (store, _) = store(&aws).await;
    let consumer = Consumer::new("payment", Runs::default())
        .on(slow_charge)
        .with_idempotency(Idempotency::new(Arc::new(store)));
    let event = order_event("ord-mm", "SKU-1", 1);
    consumer
        .process(&sqs_event(&event, "m1"), &Invocation::default())
        .await;

    let mut tampered = event.clone();
    if let EventPayload::OrderPlaced(order) = &mut tampered.payload {
        order.customer_id = "someone-else".into();
    }
    let outcome = consumer
        .process(&sqs_event(&tampered, "m2"), &Invocation::default())
        .await;
    match &outcome.records[0].1 {
        RecordOutcome::Failed(
            err @ RecordError::Idempotency(IdempotencyError::PayloadMismatch { .. }),
        ) => {
            assert!(
                !err.is_retryable(),
                "a mismatch is permanent: it goes to the DLQ"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(consumer.state().0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_duplicate_costs_one_dynamodb_request_thanks_to_all_old() {
    let aws = emulator().await;
    let table = aws.table("idempotency", "id").await;
    let counter = CountRequests::default();
    let store = DynamoIdempotencyStore::new(dynamodb_with(&aws.config, counter.clone()), &table);
    let consumer = Consumer::new("payment", Runs::default())
        .on(slow_charge)
        .with_idempotency(Idempotency::new(Arc::new(store)));
    let event = order_event("ord-dup", "SKU-1", 1);

    consumer
        .process(&sqs_event(&event, "m1"), &Invocation::default())
        .await;
    assert_eq!(counter.requests(), 2, "a new message: acquire + complete");
    let outcome = consumer
        .process(&sqs_event(&event, "m2"), &Invocation::default())
        .await;
    assert!(matches!(outcome.records[0].1, RecordOutcome::Duplicate));
    assert_eq!(
        counter.requests(),
        3,
        "a duplicate: one conditional write whose failure returns the record"
    );
}

#[tokio::test]
async fn the_in_memory_cache_answers_a_duplicate_without_a_request() {
    let aws = emulator().await;
    let table = aws.table("idempotency", "id").await;
    let counter = CountRequests::default();
    let store = DynamoIdempotencyStore::new(dynamodb_with(&aws.config, counter.clone()), &table);
    let idempotency =
        Idempotency::new(Arc::new(store)).with_cache(std::num::NonZeroUsize::new(100).unwrap());
    let consumer = Consumer::new("payment", Runs::default())
        .on(slow_charge)
        .with_idempotency(idempotency);
    let event = order_event("ord-cache", "SKU-1", 1);
    consumer
        .process(&sqs_event(&event, "m1"), &Invocation::default())
        .await;
    let outcome = consumer
        .process(&sqs_event(&event, "m2"), &Invocation::default())
        .await;
    assert!(matches!(outcome.records[0].1, RecordOutcome::Duplicate));
    assert_eq!(counter.requests(), 2);
}

// --- transaction mode -------------------------------------------------------------------------

struct Stock {
    table: String,
}

/// Reserves the order's one item: `stock >= quantity`, in the same transaction as the record.
async fn reserve(
    message: Message<OrderPlaced>,
    state: Arc<Stock>,
) -> Result<Outcome, HandlerError> {
    let item = &message.data.items[0];
    let update = Update::builder()
        .table_name(&state.table)
        .key("sku", AttributeValue::S(item.sku.clone()))
        .update_expression("SET stock = stock - :q")
        .condition_expression("stock >= :q")
        .expression_attribute_values(":q", AttributeValue::N(item.quantity.to_string()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(HandlerError::permanent)?;
    Ok(Outcome::done().write(TransactWriteItem::builder().update(update).build()))
}

async fn stock_of(aws: &Emulator, table: &str, sku: &str) -> i64 {
    let out = aws
        .dynamodb
        .get_item()
        .table_name(table)
        .key("sku", AttributeValue::S(sku.into()))
        .send()
        .await
        .unwrap();
    out.item().unwrap()["stock"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap()
}

async fn stock_table(aws: &Emulator, sku: &str, stock: i64) -> String {
    let table = aws.table("stock", "sku").await;
    aws.dynamodb
        .put_item()
        .table_name(&table)
        .set_item(Some(HashMap::from([
            ("sku".to_owned(), AttributeValue::S(sku.into())),
            ("stock".to_owned(), AttributeValue::N(stock.to_string())),
        ])))
        .send()
        .await
        .unwrap();
    table
}

#[tokio::test]
async fn transaction_mode_writes_record_and_effect_in_one_request_and_once() {
    let aws = emulator().await;
    let stock = stock_table(&aws, "SKU-T", 5).await;
    let idempotency_table = aws.table("idempotency", "id").await;
    let counter = CountRequests::default();
    let store = DynamoIdempotencyStore::new(
        dynamodb_with(&aws.config, counter.clone()),
        &idempotency_table,
    );
    let consumer = Consumer::new(
        "inventory",
        Stock {
            table: stock.clone(),
        },
    )
    .on_transactional(reserve)
    .with_idempotency(Idempotency::new(Arc::new(store)));
    let event = order_event("ord-t", "SKU-T", 2);

    // A new message: exactly one DynamoDB request, and both writes happened.
    let outcome = consumer
        .process(&sqs_event(&event, "m1"), &Invocation::default())
        .await;
    assert!(
        matches!(outcome.records[0].1, RecordOutcome::Handled),
        "{outcome:?}"
    );
    assert_eq!(counter.requests(), 1);
    assert_eq!(stock_of(&aws, &stock, "SKU-T").await, 3);
    let key = format!("inventory#{}", event.event_id);
    assert_eq!(
        stored_status(&aws, &idempotency_table, &key)
            .await
            .as_deref(),
        Some(Status::Completed.as_str())
    );

    // A duplicate: no second reservation, still one request.
    let outcome = consumer
        .process(&sqs_event(&event, "m2"), &Invocation::default())
        .await;
    assert!(
        matches!(outcome.records[0].1, RecordOutcome::Duplicate),
        "{outcome:?}"
    );
    assert_eq!(counter.requests(), 2);
    assert_eq!(stock_of(&aws, &stock, "SKU-T").await, 3);
}

#[tokio::test]
async fn a_failed_business_condition_rolls_back_the_idempotency_record_and_says_which_write() {
    let aws = emulator().await;
    let stock = stock_table(&aws, "SKU-F", 1).await;
    let (store, idempotency_table) = store(&aws).await;
    let consumer = Consumer::new(
        "inventory",
        Stock {
            table: stock.clone(),
        },
    )
    .on_transactional(reserve)
    .with_idempotency(Idempotency::new(Arc::new(store)));
    let event = order_event("ord-f", "SKU-F", 3);

    let outcome = consumer
        .process(&sqs_event(&event, "m"), &Invocation::default())
        .await;
    let RecordOutcome::Failed(RecordError::Idempotency(IdempotencyError::Conflict(conflict))) =
        &outcome.records[0].1
    else {
        panic!("expected a transaction conflict, got {outcome:?}");
    };
    assert_eq!(conflict.refused.len(), 1);
    assert_eq!(conflict.refused[0].index, 0);
    assert_eq!(conflict.refused[0].code, "ConditionalCheckFailed");
    let old_stock = conflict.refused[0]
        .item
        .as_ref()
        .and_then(|i| i.get("stock"))
        .and_then(|s| s.as_n().ok());
    assert_eq!(
        old_stock.map(String::as_str),
        Some("1"),
        "ALL_OLD shows the stock that was short"
    );
    // Nothing was written: no reservation, and no idempotency record, so a retry decides again.
    assert_eq!(stock_of(&aws, &stock, "SKU-F").await, 1);
    let key = format!("inventory#{}", event.event_id);
    assert_eq!(stored_status(&aws, &idempotency_table, &key).await, None);
}

// --- follow-up events -------------------------------------------------------------------------

async fn pay(message: Message<OrderPlaced>, _: Arc<Runs>) -> Result<Outcome, HandlerError> {
    let paid = PaymentProcessed {
        order_id: message.data.order_id.clone(),
        payment_id: format!("pay-{}", message.data.order_id),
        amount: message.data.total,
        currency: message.data.currency.clone(),
    };
    Ok(Outcome::done().publish(message.follow_up(paid)))
}

#[tokio::test]
async fn follow_ups_carry_the_flow_and_a_duplicate_republishes_the_same_event() {
    let aws = emulator().await;
    let (store, _) = store(&aws).await;
    let topic = aws.topic("followups", false).await;
    let queue = aws.queue("followups", false).await;
    aws.subscribe(&topic, &queue, true, None).await;
    let consumer = Consumer::new("payment", Runs::default())
        .on(pay)
        .with_idempotency(Idempotency::new(Arc::new(store)))
        .with_publisher(Publisher::new(aws.sns.clone(), &topic));
    let placed = order_event("ord-fu", "SKU-1", 1);

    consumer
        .process(&sqs_event(&placed, "m1"), &Invocation::default())
        .await;
    let outcome = consumer
        .process(&sqs_event(&placed, "m2"), &Invocation::default())
        .await;
    assert!(matches!(outcome.records[0].1, RecordOutcome::Duplicate));

    let received = aws.receive(&queue, 2, DELIVERY_DEADLINE).await;
    assert_eq!(received.len(), 2, "the original publish and the replay");
    let (first, second) = (received[0].event(), received[1].event());
    assert_eq!(
        first.event_id, second.event_id,
        "the replay is the same event: downstream absorbs it"
    );
    assert_eq!(first.correlation_id, placed.correlation_id);
    assert_eq!(first.causation_id, Some(placed.event_id.to_string()));
    assert_eq!(first.source, "payment");
}

#[tokio::test]
async fn a_retried_acquire_finds_its_own_hold_and_only_the_holder_releases_it() {
    let aws = emulator().await;
    let (store, table) = store(&aws).await;
    let event = order_event("ord-own", "SKU-1", 1);
    let now = now_ms();
    let mine = claim(&event, now, now / 1000 + 3600, now + 60_000);
    // The SDK retries a PutItem whose first attempt went through: the hold is ours.
    assert_eq!(store.acquire(&mine).await.unwrap(), Acquired::Started);
    assert_eq!(store.acquire(&mine).await.unwrap(), Acquired::Started);
    // Another invocation sees it in progress, and cannot release it.
    let theirs = Claim {
        owner: "another-invocation".into(),
        ..mine.clone()
    };
    assert!(matches!(
        store.acquire(&theirs).await.unwrap(),
        Acquired::InProgress { .. }
    ));
    store.release(&theirs).await.unwrap();
    let key = format!("payment#{}", event.event_id);
    assert_eq!(
        stored_status(&aws, &table, &key).await.as_deref(),
        Some("INPROGRESS")
    );
    store.release(&mine).await.unwrap();
    assert_eq!(stored_status(&aws, &table, &key).await, None);
}

#[tokio::test]
async fn a_holder_whose_claim_was_taken_over_cannot_complete_it() {
    let aws = emulator().await;
    let (store, table) = store(&aws).await;
    let event = order_event("ord-lapsed", "SKU-1", 1);
    let now = now_ms();
    // GIVEN a slow invocation whose hold lapsed, and another that took the key over
    let slow = claim(&event, now, now / 1000 + 3600, now + 100);
    assert_eq!(store.acquire(&slow).await.unwrap(), Acquired::Started);
    let later = claim(&event, now + 1_000, now / 1000 + 3600, now + 60_000);
    assert_eq!(store.acquire(&later).await.unwrap(), Acquired::Started);
    // WHEN the slow one tries to complete
    let err = store.complete(&slow, "{\"mine\":true}").await.unwrap_err();
    // THEN it is told, and the record stays the other invocation's
    assert!(
        matches!(&err, IdempotencyError::ClaimLost { .. }) && err.is_retryable(),
        "{err}"
    );
    let key = format!("payment#{}", event.event_id);
    assert_eq!(
        stored_status(&aws, &table, &key).await.as_deref(),
        Some("INPROGRESS")
    );
    // The holder completes; completing again (an SDK retry) is harmless.
    store.complete(&later, "{}").await.unwrap();
    store.complete(&later, "{}").await.unwrap();
    assert_eq!(
        stored_status(&aws, &table, &key).await.as_deref(),
        Some("COMPLETED")
    );
}
