//! Pub/sub fan-out: one publish reaches every subscribed queue, filtered and raw as configured.

use orderflow::Publisher;
use orderflow::event::{EventType, examples};
use orderflow_tests::{ABSENCE_GRACE, DELIVERY_DEADLINE, emulator, expected_attributes};
use serde_json::json;

#[tokio::test]
async fn one_publish_reaches_both_subscribed_queues() {
    let aws = emulator().await;
    let topic = aws.topic("fanout", false).await;
    let payment = aws.queue("payment", false).await;
    let inventory = aws.queue("inventory", false).await;
    aws.subscribe(&topic, &payment, false, None).await;
    aws.subscribe(&topic, &inventory, false, None).await;

    let event = examples::order_placed();
    Publisher::new(aws.sns.clone(), &topic)
        .publish(&event)
        .await
        .unwrap();

    for queue in [&payment, &inventory] {
        let received = aws.receive(queue, 1, DELIVERY_DEADLINE).await;
        assert_eq!(
            received.len(),
            1,
            "queue {} got {} messages",
            queue.url,
            received.len()
        );
        assert!(
            received[0].wrapped,
            "raw delivery is off: SNS wraps the message"
        );
        assert_eq!(received[0].event(), event);
        assert_eq!(received[0].attributes, expected_attributes(&event));
    }
}

#[tokio::test]
async fn filter_policy_routes_only_matching_events_and_raw_delivery_sends_the_bare_envelope() {
    let aws = emulator().await;
    let topic = aws.topic("filter", false).await;
    // GIVEN a raw-delivery queue that wants only PaymentFailed and OrderCancelled,
    let orders = aws.queue("orders", false).await;
    aws.subscribe(
        &topic,
        &orders,
        true,
        Some(json!({"eventType": ["PaymentFailed", "OrderCancelled"]})),
    )
    .await;
    // and a control queue that gets everything
    let audit = aws.queue("audit", false).await;
    aws.subscribe(&topic, &audit, false, None).await;

    // WHEN an OrderPlaced and a PaymentFailed are published
    let publisher = Publisher::new(aws.sns.clone(), &topic);
    let placed = examples::order_placed();
    let failed = examples::example(EventType::PaymentFailed);
    publisher.publish(&placed).await.unwrap();
    publisher.publish(&failed).await.unwrap();

    // THEN the control queue gets both
    let audit_events: Vec<_> = aws
        .receive(&audit, 2, DELIVERY_DEADLINE)
        .await
        .iter()
        .map(|r| r.event())
        .collect();
    assert_eq!(audit_events.len(), 2);
    assert!(audit_events.contains(&placed) && audit_events.contains(&failed));

    // AND the filtered queue gets only the PaymentFailed, as the bare envelope
    let routed = aws.receive(&orders, 1, DELIVERY_DEADLINE).await;
    assert_eq!(routed.len(), 1);
    assert!(
        !routed[0].wrapped,
        "raw delivery: the SQS body is the event itself"
    );
    assert_eq!(routed[0].body, failed.encode().unwrap());
    assert_eq!(routed[0].event(), failed);
    assert_eq!(
        routed[0].attributes,
        expected_attributes(&failed),
        "raw delivery keeps attributes as SQS attributes"
    );
    let late = aws.receive_for(&orders, ABSENCE_GRACE).await;
    assert!(
        late.is_empty(),
        "the filter let through: {:?}",
        late.iter()
            .map(|r| r.event().event_type())
            .collect::<Vec<_>>()
    );
}
