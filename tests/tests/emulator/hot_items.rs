//! Hot items: many concurrent orders for one day and one SKU, with DynamoDB's transaction
//! conflicts simulated (moto never produces them), end with every counter exact and every DLQ
//! empty: conflicts are retried, never dead-lettered.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use orderflow::consume::{Consumer, ConsumerEnv, ConsumerOptions, Invocation, VisibilityBackoff};
use orderflow::event::{EventPayload, examples};
use orderflow::testing::LogCapture;
use orderflow::{Event, Publisher};
use orderflow_tests::conflicts::ConflictingDynamoDb;
use orderflow_tests::{Emulator, Queue, emulator};
use rust_decimal::Decimal;
use serde_json::json;

const ORDERS: usize = 200;
const WORKERS: usize = 5;

fn order(i: usize) -> Event {
    let mut event = examples::order_placed();
    let order_id = format!("ord-hot-{i}");
    event.aggregate_id = order_id.clone();
    if let EventPayload::OrderPlaced(order) = &mut event.payload {
        order.order_id = order_id;
        order.items.truncate(1);
        order.items[0].sku = "SKU-HOT".into();
        order.items[0].quantity = 2;
        order.items[0].unit_price = Decimal::new(500, 2);
        order.total = Decimal::new(1000, 2);
    }
    event
}

/// What the SQS event source mapping does, `WORKERS` invocations at once (the template's
/// MaximumConcurrency), until the queue is empty.
async fn drain<S: Send + Sync + 'static>(
    aws: Arc<Emulator>,
    queue: Queue,
    consumer: Arc<Consumer<S>>,
    logs: LogCapture,
) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (aws, queue, consumer, logs) =
                (aws.clone(), queue.clone(), consumer.clone(), logs.clone());
            tokio::spawn(async move {
                loop {
                    if Instant::now() >= deadline {
                        panic!("{}", why_not_drained(&aws, &queue, &logs).await);
                    }
                    let messages = aws.receive_raw(&queue, 10, Duration::from_secs(1)).await;
                    if messages.is_empty() {
                        if aws.queue_depth(&queue).await == 0 {
                            return;
                        }
                        continue;
                    }
                    let event = orderflow::testing::sqs_event::from_received(
                        &messages,
                        &queue.arn,
                        "us-east-1",
                    )
                    .expect("SqsEvent");
                    let invocation = Invocation {
                        request_id: "hot".into(),
                        deadline: Some(SystemTime::now() + Duration::from_secs(15)),
                        ..Invocation::default()
                    };
                    let response = consumer.process(&event, &invocation).await.response();
                    aws.acknowledge(&queue, &messages, &response).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
}

/// What a queue that did not drain holds, and the consumers' last warnings and errors: what
/// a red run needs to say why.
async fn why_not_drained(aws: &Emulator, queue: &Queue, logs: &LogCapture) -> String {
    let attributes = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .map(|out| format!("{:?}", out.attributes()))
        .unwrap_or_else(|err| format!("GetQueueAttributes: {err}"));
    let lines = logs.lines();
    let complaints: Vec<String> = lines
        .iter()
        .filter(|line| line["level"] != "INFO")
        .map(|line| line.to_string())
        .collect();
    let last = complaints.len().saturating_sub(40);
    format!(
        "{} did not drain\nqueue attributes: {attributes}\n{} log lines, {} warnings and errors; the last ones:\n{}",
        queue.url,
        lines.len(),
        complaints.len(),
        complaints[last..].join("\n")
    )
}

#[tokio::test]
async fn many_concurrent_orders_for_one_day_and_one_sku_end_exact_with_every_dlq_empty() {
    let aws = Arc::new(emulator().await);
    // The consumers' log lines (every task of this test runs on its thread), for a red run.
    let logs = LogCapture::new();
    let _capture = logs.install();
    // GIVEN DynamoDB that cancels overlapping transactions, as DynamoDB does
    let dynamodb = ConflictingDynamoDb::new(Duration::from_millis(15));
    let sdk = aws
        .config
        .to_builder()
        .http_client(dynamodb.clone())
        .build();
    let idempotency = aws.table("hot-idempotency", "id").await;
    let inventory_table = aws.table("hot-inventory", "pk").await;
    let analytics_table = aws.table("hot-analytics", "pk").await;
    let topic = aws.topic("hot-events", false).await;
    let mut queues = Vec::new();
    for name in ["hot-inventory", "hot-analytics"] {
        let (queue, dlq) = aws.queue_with_dlq(name, 5, 30).await;
        aws.subscribe(
            &topic,
            &queue,
            true,
            Some(json!({"eventType": ["OrderPlaced"]})),
        )
        .await;
        queues.push((queue, dlq));
    }
    inventory::DynamoInventoryStore::new(aws.dynamodb.clone(), &inventory_table)
        .set_stock("SKU-HOT", 1_000)
        .await
        .expect("seed stock");
    let env = ConsumerEnv {
        idempotency_table: idempotency,
        events_topic_arn: Some(topic.clone()),
        dead_letter_queue_url: None,
        metrics: Default::default(),
    };
    // Retries of a failed record come back in seconds here, so five failed receives would
    // reach the DLQ within the test.
    let quick_retries = |options: ConsumerOptions| ConsumerOptions {
        visibility_backoff: VisibilityBackoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(2),
        },
        ..options
    };
    let inventory = Arc::new(
        inventory::consumer(
            &sdk,
            inventory::Config {
                consumer: env.clone(),
                inventory_table: inventory_table.clone(),
            },
        )
        .with_options(quick_retries(inventory::options())),
    );
    let analytics = Arc::new(
        analytics::consumer(
            &sdk,
            analytics::Config {
                consumer: env,
                analytics_table: analytics_table.clone(),
            },
        )
        .with_options(quick_retries(ConsumerOptions::default())),
    );

    // WHEN 200 orders for one SKU arrive at once and five invocations of each consumer run
    let events: Vec<Event> = (0..ORDERS).map(order).collect();
    let report = Publisher::new(aws.sns.clone(), &topic)
        .publish_batch(&events)
        .await;
    assert!(report.is_complete(), "{:?}", report.failures().next());
    tokio::join!(
        drain(aws.clone(), queues[0].0.clone(), inventory, logs.clone()),
        drain(aws.clone(), queues[1].0.clone(), analytics, logs.clone()),
    );

    // THEN the transactions did conflict, and yet every counter is exact and no DLQ holds
    // anything
    assert!(
        dynamodb.conflicts() > 0,
        "no conflict happened in {} transactions: the test shows nothing",
        dynamodb.transactions()
    );
    eprintln!(
        "{} of {} transactions cancelled by conflicts",
        dynamodb.conflicts(),
        dynamodb.transactions()
    );
    let stock = aws
        .dynamodb
        .get_item()
        .table_name(&inventory_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("SKU#SKU-HOT".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem");
    let stock = stock
        .item()
        .and_then(|i| i.get("stock"))
        .and_then(|v| v.as_n().ok())
        .cloned();
    assert_eq!(stock.as_deref(), Some("600"), "1000 - 200 orders x 2");
    let items = aws
        .dynamodb
        .scan()
        .table_name(&analytics_table)
        .send()
        .await
        .expect("Scan");
    assert!(items.last_evaluated_key().is_none());
    let rows: Vec<(String, Vec<(String, Decimal)>)> = items
        .items()
        .iter()
        .map(|item| {
            let key = item["pk"].as_s().expect("pk").clone();
            let amounts = item
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?)))
                .collect();
            (key, amounts)
        })
        .collect();
    let totals = analytics::sum_shards(rows.iter().map(|(k, a)| (k.as_str(), a.clone())));
    let day = events[0].occurred_at.format("%Y-%m-%d");
    assert_eq!(
        totals[&format!("DAY#{day}")]["ordersPlaced"],
        Decimal::from(ORDERS)
    );
    assert_eq!(totals["SKU#SKU-HOT"]["units"], Decimal::from(2 * ORDERS));
    assert_eq!(
        totals[&format!("REVENUE#{day}#EUR")]["placed"],
        Decimal::from(10 * ORDERS)
    );
    for (queue, dlq) in &queues {
        assert_eq!(aws.queue_depth(dlq).await, 0, "DLQ of {}", queue.url);
    }
}
