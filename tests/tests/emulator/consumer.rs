//! The batch consumer against the emulator: real SNS notification bodies as SQS delivers them,
//! poison messages to the DLQ with their reasons, transient failures back after a backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use orderflow::Event;
use orderflow::consume::{
    Consumer, ConsumerOptions, HandlerError, Invocation, Message, Outcome, RecordError,
    RecordOutcome, VisibilityBackoff,
};
use orderflow::event::{EventPayload, OrderPlaced, examples};
use orderflow_tests::{DELIVERY_DEADLINE, emulator};
use serde_json::json;

#[derive(Default)]
struct Charges(AtomicUsize);

async fn charge(
    message: Message<OrderPlaced>,
    state: Arc<Charges>,
) -> Result<Outcome, HandlerError> {
    if message.data.customer_id == "panic" {
        panic!("the gateway client panicked");
    }
    state.0.fetch_add(1, Ordering::SeqCst);
    Ok(Outcome::done())
}

fn order(order_id: &str, customer: &str) -> Event {
    let mut event = examples::order_placed();
    event.aggregate_id = order_id.into();
    if let EventPayload::OrderPlaced(order) = &mut event.payload {
        order.order_id = order_id.into();
        order.customer_id = customer.into();
    }
    event
}

fn attribute<'a>(message: &'a aws_sdk_sqs::types::Message, name: &str) -> &'a str {
    message
        .message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_batch_of_ten_with_three_bad_records_handles_seven_and_dead_letters_the_poison() {
    let aws = emulator().await;
    let topic = aws.topic("consume10", false).await;
    let (queue, dlq) = aws.queue_with_dlq("consume10", 5, 60).await;
    aws.subscribe(&topic, &queue, false, None).await;

    // GIVEN ten messages published through SNS (raw delivery off: real notification bodies):
    // seven valid orders, one malformed, one of an unknown version, one whose handler panics
    let mut unknown_version = serde_json::to_value(order("ord-v9", "c")).unwrap();
    unknown_version["eventVersion"] = json!(9);
    let mut bodies: Vec<String> = (0..7)
        .map(|i| order(&format!("ord-{i}"), "c").encode().unwrap())
        .collect();
    bodies.push("{\"eventId\": \"truncated".to_owned());
    bodies.push(unknown_version.to_string());
    bodies.push(order("ord-p", "panic").encode().unwrap());
    for body in &bodies {
        aws.sns
            .publish()
            .topic_arn(&topic)
            .message(body)
            .send()
            .await
            .unwrap();
    }
    let (event, messages) = aws.sqs_event(&queue, 10).await;
    let id_of = |body: &str| {
        messages
            .iter()
            .find(|m| {
                orderflow::sns::message_body(m.body().unwrap_or_default()).message() == Some(body)
            })
            .and_then(|m| m.message_id())
            .unwrap()
            .to_owned()
    };
    let (malformed, v9, panics) = (id_of(&bodies[7]), id_of(&bodies[8]), id_of(&bodies[9]));

    // WHEN the consumer (DLQ found through the queue's redrive policy) processes the batch
    // A 2 s backoff (instead of the default 20 s) keeps the redelivery check below quick.
    let options = ConsumerOptions {
        visibility_backoff: VisibilityBackoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        },
        ..ConsumerOptions::default()
    };
    let consumer = Consumer::new("payment", Charges::default())
        .on(charge)
        .with_sqs(aws.sqs.clone(), None)
        .with_options(options);
    let outcome = consumer.process(&event, &Invocation::default()).await;
    let response = outcome.response();
    aws.acknowledge(&queue, &messages, &response).await;

    // THEN seven are handled, the two poison messages are dead-lettered and acknowledged,
    // and only the panicking one is returned for retry
    assert_eq!(consumer_charges(&consumer), 7);
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, std::slice::from_ref(&panics));
    assert!(matches!(
        outcome.get(&malformed),
        Some(RecordOutcome::DeadLettered(RecordError::Decode(_)))
    ));
    assert!(matches!(
        outcome.get(&v9),
        Some(RecordOutcome::DeadLettered(RecordError::Decode(_)))
    ));
    assert!(matches!(
        outcome.get(&panics),
        Some(RecordOutcome::Failed(RecordError::Panic(_)))
    ));

    // AND the DLQ holds both poison messages, bodies unchanged, with why and where from
    let dead = aws.receive_raw(&dlq, 2, DELIVERY_DEADLINE).await;
    assert_eq!(dead.len(), 2);
    for message in &dead {
        let original = attribute(message, "originalMessageId");
        let source = messages
            .iter()
            .find(|m| m.message_id() == Some(original))
            .expect("names the original message");
        assert_eq!(
            message.body(),
            source.body(),
            "the body is kept as delivered"
        );
        assert_eq!(attribute(message, "sourceQueue"), queue.arn);
        assert_eq!(attribute(message, "receiveCount"), "1");
        assert_eq!(attribute(message, "consumer"), "payment");
        let expected_kind = if original == malformed {
            "MalformedJson"
        } else {
            "UnsupportedVersion"
        };
        assert_eq!(attribute(message, "errorKind"), expected_kind);
        assert!(!attribute(message, "errorMessage").is_empty());
    }

    // AND the panicking message comes back after the backoff (at most 2 s on the first
    // receive), long before the queue's own 60 s visibility timeout
    let again = aws.receive_raw(&queue, 1, Duration::from_secs(20)).await;
    assert_eq!(
        again.len(),
        1,
        "the failed message was not made visible again by the backoff"
    );
    assert_eq!(again[0].message_id(), Some(panics.as_str()));
    let receive_count = again[0]
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .cloned();
    assert_eq!(receive_count.as_deref(), Some("2"));
}

fn consumer_charges(consumer: &Consumer<Charges>) -> usize {
    consumer.state().0.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_failed_dlq_send_reports_the_record_failed_instead_of_losing_it() {
    let aws = emulator().await;
    let (queue, _dlq) = aws.queue_with_dlq("dlqfail", 5, 60).await;
    aws.sqs
        .send_message()
        .queue_url(&queue.url)
        .message_body("not an event")
        .send()
        .await
        .unwrap();
    let (event, messages) = aws.sqs_event(&queue, 1).await;

    // GIVEN a DLQ that does not exist
    let missing = aws.queue("gone", false).await;
    aws.sqs
        .delete_queue()
        .queue_url(&missing.url)
        .send()
        .await
        .unwrap();
    let consumer = Consumer::new("payment", Charges::default())
        .on(charge)
        .with_sqs(aws.sqs.clone(), Some(missing.url));

    let outcome = consumer.process(&event, &Invocation::default()).await;
    let id = messages[0].message_id().unwrap();
    assert!(
        matches!(
            outcome.get(id),
            Some(RecordOutcome::Failed(RecordError::Decode(_)))
        ),
        "{outcome:?}"
    );
    assert_eq!(outcome.response().batch_item_failures.len(), 1);
}

/// Waits for its order's `OrderPlaced` for customer `waits`; fails transiently otherwise.
async fn waits_for_its_order(
    message: Message<OrderPlaced>,
    _: Arc<Charges>,
) -> Result<Outcome, HandlerError> {
    let error =
        HandlerError::transient(format!("order {} is not known yet", message.data.order_id));
    Err(match message.data.customer_id.as_str() {
        "waits" => error.with_kind("OrderNotYetKnown").waiting_for_cause(),
        _ => error,
    })
}

#[tokio::test]
async fn at_the_last_receive_a_waiting_record_goes_back_to_its_queue_and_others_to_the_dlq_with_a_reason()
 {
    let aws = emulator().await;
    // GIVEN a queue whose redrive policy allows one receive: the first is the last
    let (queue, dlq) = aws.queue_with_dlq("lastreceive", 1, 60).await;
    let origin = aws_sdk_sqs::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value("partner-shop")
        .build()
        .unwrap();
    let bodies: std::collections::HashMap<&str, String> = ["waits", "flaky"]
        .into_iter()
        .map(|customer| {
            let body = order(&format!("ord-{customer}"), customer)
                .encode()
                .unwrap();
            (customer, body)
        })
        .collect();
    for body in bodies.values() {
        aws.sqs
            .send_message()
            .queue_url(&queue.url)
            .message_body(body)
            .message_attributes("origin", origin.clone())
            .send()
            .await
            .unwrap();
    }
    let (event, messages) = aws.sqs_event(&queue, 2).await;
    let body_of = |customer: &str| bodies[customer].clone();
    let id_of = |customer: &str| {
        messages
            .iter()
            .find(|m| m.body() == Some(body_of(customer).as_str()))
            .and_then(|m| m.message_id())
            .unwrap()
            .to_owned()
    };
    let sent_at = |message: &aws_sdk_sqs::types::Message| {
        message
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp))
            .cloned()
            .unwrap_or_default()
    };
    let waiting_sent_at = sent_at(
        messages
            .iter()
            .find(|m| m.message_id() == Some(id_of("waits").as_str()))
            .unwrap(),
    );

    // WHEN both fail (a 1 s backoff keeps the copy's delay short)
    let options = ConsumerOptions {
        visibility_backoff: VisibilityBackoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(2),
        },
        ..ConsumerOptions::default()
    };
    let consumer = Consumer::new("orders", Charges::default())
        .on(waits_for_its_order)
        .emits_no_events()
        .with_sqs(aws.sqs.clone(), None)
        .with_options(options.clone());
    let outcome = consumer.process(&event, &Invocation::default()).await;
    let response = outcome.response();
    aws.acknowledge(&queue, &messages, &response).await;

    // THEN neither is left to the redrive policy: the waiting one is sent back, the other
    // dead-lettered with its reason, and both originals are acknowledged
    assert!(response.batch_item_failures.is_empty(), "{outcome:?}");
    assert!(matches!(
        outcome.get(&id_of("waits")),
        Some(RecordOutcome::SentBack(_))
    ));
    assert!(matches!(
        outcome.get(&id_of("flaky")),
        Some(RecordOutcome::DeadLettered(_))
    ));
    let dead = aws.receive_raw(&dlq, 1, DELIVERY_DEADLINE).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some(body_of("flaky").as_str()));
    assert_eq!(attribute(&dead[0], "errorKind"), "HandlerTransient");
    assert_eq!(attribute(&dead[0], "receiveCount"), "1");

    // AND the copy comes back after its delay: same body, its attributes kept, and when its
    // wait started
    let copies = aws.receive_raw(&queue, 1, Duration::from_secs(20)).await;
    assert_eq!(copies.len(), 1, "the copy came back to the queue");
    let copy = &copies[0];
    assert_eq!(copy.body(), Some(body_of("waits").as_str()));
    assert_ne!(copy.message_id(), Some(id_of("waits").as_str()));
    assert_eq!(attribute(copy, "origin"), "partner-shop");
    assert_eq!(attribute(copy, "orderflowEarlierReceives"), "1");
    assert_eq!(attribute(copy, "orderflowWaitingSince"), waiting_sent_at);

    // AND once the wait is over the limit, the copy goes to the DLQ with its reason
    let event = orderflow::testing::sqs_event::from_received(&copies, &queue.arn, "us-east-1")
        .expect("SqsEvent");
    let impatient = Consumer::new("orders", Charges::default())
        .on(waits_for_its_order)
        .emits_no_events()
        .with_sqs(aws.sqs.clone(), None)
        .with_options(ConsumerOptions {
            max_wait_for_cause: Duration::ZERO,
            ..options
        });
    let outcome = impatient.process(&event, &Invocation::default()).await;
    aws.acknowledge(&queue, &copies, &outcome.response()).await;
    assert!(matches!(
        outcome.get(copy.message_id().unwrap()),
        Some(RecordOutcome::DeadLettered(_))
    ));
    let dead = aws.receive_raw(&dlq, 1, DELIVERY_DEADLINE).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some(body_of("waits").as_str()));
    assert_eq!(attribute(&dead[0], "errorKind"), "OrderNotYetKnown");
    assert_eq!(aws.queue_depth(&queue).await, 0, "nothing left behind");
}
