//! PublishBatch against the emulator: request sizing, per-entry rejection, size limits, and
//! validation before any network call.

use std::collections::BTreeSet;

use orderflow::event::{EventPayload, examples};
use orderflow::publish::{MAX_BATCH_ENTRIES, PublishError};
use orderflow::{Event, EventError, Publisher};
use orderflow_tests::interceptors::{CountRequests, PoisonBatchEntry, sns_with};
use orderflow_tests::{ABSENCE_GRACE, DELIVERY_DEADLINE, emulator};

fn events(n: usize) -> Vec<Event> {
    (0..n).map(|_| examples::order_placed()).collect()
}

fn ids(events: &[Event]) -> BTreeSet<String> {
    events.iter().map(|e| e.event_id.to_string()).collect()
}

#[tokio::test]
async fn twenty_five_events_go_out_in_three_requests_and_all_arrive() {
    let aws = emulator().await;
    let topic = aws.topic("batch25", false).await;
    let queue = aws.queue("batch25", false).await;
    aws.subscribe(&topic, &queue, true, None).await;
    let counter = CountRequests::default();
    let publisher = Publisher::new(sns_with(&aws.config, counter.clone()), &topic);

    let input = events(25);
    let report = publisher.publish_batch(&input).await;

    assert!(
        report.is_complete(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(report.requests, 3);
    assert_eq!(
        counter.batch_sizes(),
        [MAX_BATCH_ENTRIES, MAX_BATCH_ENTRIES, 5]
    );
    let received = aws.receive(&queue, 25, DELIVERY_DEADLINE).await;
    let arrived: BTreeSet<String> = received
        .iter()
        .map(|r| r.event().event_id.to_string())
        .collect();
    assert_eq!(arrived, ids(&input));
}

#[tokio::test]
async fn an_entry_the_service_rejects_is_reported_by_id_while_the_others_succeed() {
    let aws = emulator().await;
    let topic = aws.topic("batch-reject", false).await;
    let queue = aws.queue("batch-reject", false).await;
    aws.subscribe(&topic, &queue, true, None).await;
    // GIVEN SNS will refuse entry e3 (a dedup id on a standard topic: the sender's fault)
    let publisher = Publisher::new(
        sns_with(
            &aws.config,
            PoisonBatchEntry {
                entry_id: "e3".into(),
            },
        ),
        &topic,
    );

    let input = events(6);
    let report = publisher.publish_batch(&input).await;

    // THEN e3 is reported, once, by its event id, and not retried: the others arrive
    let failures: Vec<&PublishError> = report.failures().collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].event_id(), input[3].event_id);
    assert!(
        matches!(failures[0], PublishError::Rejected { code, retryable: false, attempts: 1, .. } if code == "InvalidParameter"),
        "{}",
        failures[0]
    );
    assert_eq!(report.requests, 1);
    let mut expected = input.clone();
    expected.remove(3);
    let received = aws.receive(&queue, 5, DELIVERY_DEADLINE).await;
    let mut arrived: BTreeSet<String> = received
        .iter()
        .map(|r| r.event().event_id.to_string())
        .collect();
    arrived.extend(
        aws.receive_for(&queue, ABSENCE_GRACE)
            .await
            .iter()
            .map(|r| r.event().event_id.to_string()),
    );
    assert_eq!(arrived, ids(&expected));
}

#[tokio::test]
async fn an_event_over_256_kib_is_refused_before_sending() {
    let aws = emulator().await;
    let topic = aws.topic("batch-big", false).await;
    let queue = aws.queue("batch-big", false).await;
    aws.subscribe(&topic, &queue, true, None).await;
    let counter = CountRequests::default();
    let publisher = Publisher::new(sns_with(&aws.config, counter.clone()), &topic);

    let mut input = events(3);
    if let EventPayload::OrderPlaced(order) = &mut input[1].payload {
        order.customer_id = "x".repeat(300 * 1024);
    }
    let report = publisher.publish_batch(&input).await;

    assert!(matches!(
        &report.results[1],
        Err(PublishError::Invalid {
            source: EventError::TooLarge { limit: 262_144, .. },
            ..
        })
    ));
    assert_eq!(
        counter.batch_sizes(),
        [2],
        "only the two valid events were sent"
    );
    let received = aws.receive(&queue, 2, DELIVERY_DEADLINE).await;
    assert_eq!(received.len(), 2);
}

#[tokio::test]
async fn large_events_are_split_by_bytes_not_just_count() {
    let aws = emulator().await;
    let topic = aws.topic("batch-bytes", false).await;
    let queue = aws.queue("batch-bytes", false).await;
    aws.subscribe(&topic, &queue, true, None).await;
    let counter = CountRequests::default();
    let publisher = Publisher::new(sns_with(&aws.config, counter.clone()), &topic);

    // Five ~100 KiB events: at most two fit in one 256 KiB request.
    let mut input = events(5);
    for event in &mut input {
        if let EventPayload::OrderPlaced(order) = &mut event.payload {
            order.customer_id = "c".repeat(100 * 1024);
        }
    }
    let report = publisher.publish_batch(&input).await;
    assert!(
        report.is_complete(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(counter.batch_sizes(), [2, 2, 1]);
    assert_eq!(aws.receive(&queue, 5, DELIVERY_DEADLINE).await.len(), 5);
}

#[tokio::test]
async fn invalid_events_are_rejected_before_any_network_call() {
    let aws = emulator().await;
    let counter = CountRequests::default();
    let publisher = Publisher::new(
        sns_with(&aws.config, counter.clone()),
        "arn:aws:sns:us-east-1:000000000000:never-created",
    );
    let mut event = examples::order_placed();
    if let EventPayload::OrderPlaced(order) = &mut event.payload {
        order.total = rust_decimal::Decimal::ONE;
    }
    let err = publisher.publish(&event).await.unwrap_err();
    assert!(
        matches!(&err, PublishError::Invalid { source: EventError::InvalidField { field, .. }, .. } if field == "data.total"),
        "{err}"
    );
    let report = publisher.publish_batch(&[event.clone(), event]).await;
    assert_eq!(report.failures().count(), 2);
    assert_eq!(counter.requests(), 0);
}
