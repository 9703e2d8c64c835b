//! What one new `OrderPlaced` costs each consumer in AWS requests, counted on the wire: the
//! figures the benchmark report's cost model and README's idempotency section rest on, kept
//! true by this test. Idempotency through the record's own transaction costs one DynamoDB
//! request; a handler run under a claim (`on`) costs the claim and its completion, 2, plus its
//! effect's own requests.

use std::collections::BTreeMap;

use orderflow::consume::{ConsumerOptions, RecordOutcome};
use orderflow::env::Vars;
use orderflow::event::examples;
use orderflow_tests::requests::CountingClient;
use orderflow_tests::services::{IDEMPOTENCY_TABLE, SERVICES, service};
use orderflow_tests::{emulator, sqs_event_of};

fn dynamodb(counts: &BTreeMap<String, usize>) -> usize {
    counts
        .iter()
        .filter(|(operation, _)| operation.starts_with("DynamoDB."))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn one_new_order_costs_each_consumer_the_dynamodb_requests_its_idempotency_mode_says() {
    let aws = emulator().await;
    let mut environment = BTreeMap::new();
    for table in std::iter::once(&IDEMPOTENCY_TABLE).chain(SERVICES.iter().map(|s| &s.table)) {
        let name = aws
            .create_table(table.role, table.hash, table.range, table.stream)
            .await;
        environment.insert(table.variable.to_owned(), name);
    }
    let topic = aws.topic("requests-events", false).await;
    environment.insert(orderflow::env::vars::EVENTS_TOPIC_ARN.to_owned(), topic);
    let vars = Vars::from_map(environment.clone());
    let placed = examples::order_placed();
    let stock =
        inventory::DynamoInventoryStore::new(aws.dynamodb.clone(), &environment["INVENTORY_TABLE"]);
    if let orderflow::event::EventPayload::OrderPlaced(order) = &placed.payload {
        for item in &order.items {
            stock.set_stock(&item.sku, 100).await.expect("stock");
        }
    }
    let counting = CountingClient::default();
    let sdk = aws
        .config
        .to_builder()
        .http_client(counting.clone())
        .build();
    let batch = sqs_event_of(
        std::slice::from_ref(&placed),
        "arn:aws:sqs:us-east-1:123456789012:q",
    );

    // (function, DynamoDB requests for a new order, for the same order again in a new process)
    let expected = [
        // `on`: the claim, the payment's two writes, the completion; again: the claim, refused
        ("payment", 4, 1),
        // transactional, with reads of its own (GetItem, BatchGetItem of the stock) before its
        // one transaction; again: a read, then the transaction refused by the record
        ("inventory", 3, 2),
        // `on`: the claim, the notification's two writes, the completion
        ("notification", 4, 1),
        // transactional: one transaction, the record and the counters
        ("analytics", 1, 1),
    ];
    let mut measured = Vec::new();
    for (name, _, _) in expected {
        let service = service(name).expect("registered");
        let mut counts = Vec::new();
        for _ in ["new", "again in a fresh process"] {
            let consumer =
                (service.build)(&sdk, &vars, ConsumerOptions::default()).expect("environment");
            counting.take();
            let outcome = consumer.process(&batch).await;
            let (_, result) = &outcome.records[0];
            assert!(
                matches!(result, RecordOutcome::Handled | RecordOutcome::Duplicate),
                "{name}: {result:?}"
            );
            let took = counting.take();
            counts.push((dynamodb(&took), took));
        }
        measured.push((name, counts[0].0, counts[1].0, counts));
    }
    let summary: Vec<_> = measured
        .iter()
        .map(|(name, new, again, _)| (*name, *new, *again))
        .collect();
    let detail: Vec<_> = measured
        .iter()
        .map(|(name, _, _, counts)| format!("{name}: {:?} / {:?}", counts[0].1, counts[1].1))
        .collect();
    assert_eq!(
        summary,
        expected,
        "requests by operation:\n{}",
        detail.join("\n")
    );
}
