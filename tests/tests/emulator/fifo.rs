//! FIFO topic to FIFO queue: order holds per order (message group), duplicates are dropped.

use std::collections::BTreeMap;

use orderflow::event::{EventPayload, examples};
use orderflow::{Event, Publisher};
use orderflow_tests::{ABSENCE_GRACE, DELIVERY_DEADLINE, emulator};

fn order_placed_for(order_id: &str) -> Event {
    let mut event = examples::order_placed();
    event.aggregate_id = order_id.to_owned();
    if let EventPayload::OrderPlaced(order) = &mut event.payload {
        order.order_id = order_id.to_owned();
    }
    event
}

#[tokio::test]
async fn order_is_kept_per_group_and_a_republished_event_is_deduplicated() {
    let aws = emulator().await;
    let topic = aws.topic("fifo", true).await;
    let queue = aws.queue("fifo", true).await;
    aws.subscribe(&topic, &queue, true, None).await;
    let publisher = Publisher::new(aws.sns.clone(), &topic);
    assert!(publisher.is_fifo());

    // GIVEN five events each for two orders, published interleaved
    let mut published: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for i in 0..10 {
        let order_id = if i % 2 == 0 { "ord-A" } else { "ord-B" };
        let event = order_placed_for(order_id);
        publisher.publish(&event).await.unwrap();
        published
            .entry(order_id.to_owned())
            .or_default()
            .push(event);
    }
    // WHEN one of them is published again (same eventId: a retrying publisher)
    let again = published["ord-A"][2].clone();
    publisher.publish(&again).await.unwrap();

    // THEN each group arrives in publish order, and the duplicate does not arrive
    let mut received = aws.receive(&queue, 10, DELIVERY_DEADLINE).await;
    received.extend(aws.receive_for(&queue, ABSENCE_GRACE).await);
    assert_eq!(
        received.len(),
        10,
        "expected 10 distinct events, got {}",
        received.len()
    );
    let mut by_group: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for message in &received {
        let group = message
            .system_attributes
            .get("MessageGroupId")
            .cloned()
            .expect("FIFO message has a group");
        let event = message.event();
        assert_eq!(group, event.aggregate_id, "the group is the aggregate id");
        by_group.entry(group).or_default().push(event);
    }
    assert_eq!(by_group, published);
}
