//! Consumer behaviour without a network: in-memory idempotency and in-memory adapters of the
//! event and dead-letter ports (without a dead-letter sink, permanent failures are reported
//! failed; the emulator tests cover the SQS adapter).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::json;

use super::*;
use crate::event::{Event, EventPayload, OrderCancelled, OrderPlaced, examples};
use crate::idempotency::{Idempotency, InMemoryIdempotencyStore};

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:payment";
const FIFO_QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:payment.fifo";

#[derive(Default)]
struct Counters {
    placed: AtomicUsize,
    cancelled: AtomicUsize,
}

/// Panics for customer `panic`, fails transiently for customer `flaky`, permanently for `bad`.
async fn on_placed(
    message: Message<OrderPlaced>,
    state: Arc<Counters>,
) -> Result<Outcome, HandlerError> {
    match message.data.customer_id.as_str() {
        "panic" => panic!("boom for {}", message.data.order_id),
        "flaky" => return Err(HandlerError::transient("gateway timed out")),
        "bad" => return Err(HandlerError::permanent("card token is unusable")),
        _ => {}
    }
    state.placed.fetch_add(1, Ordering::SeqCst);
    Ok(Outcome::done().with_result(json!({"charged": message.data.total})))
}

async fn on_cancelled(
    _: Message<OrderCancelled>,
    state: Arc<Counters>,
) -> Result<Outcome, HandlerError> {
    state.cancelled.fetch_add(1, Ordering::SeqCst);
    Ok(Outcome::done())
}

fn consumer() -> Consumer<Counters> {
    Consumer::new("payment", Counters::default())
        .on(on_placed)
        .on(on_cancelled)
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

/// An SQS record as Lambda delivers it, with `body` raw (raw delivery).
fn record(id: &str, body: &str, queue: &str, group: Option<&str>) -> serde_json::Value {
    let mut attributes = json!({"ApproximateReceiveCount": "1", "SentTimestamp": "1763900000000"});
    if let Some(group) = group {
        attributes["MessageGroupId"] = json!(group);
    }
    json!({
        "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body, "attributes": attributes,
        "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": queue, "awsRegion": "us-east-1"
    })
}

fn batch(records: Vec<serde_json::Value>) -> SqsEvent {
    serde_json::from_value(json!({"Records": records})).unwrap()
}

fn outcome_kinds(outcome: &BatchOutcome) -> Vec<String> {
    outcome
        .records
        .iter()
        .map(|(_, o)| format!("{o:?}").split('(').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn bad_records_fail_alone_and_the_rest_succeed() {
    // GIVEN a batch of 10: 7 good orders, one malformed, one of an unknown version, one that panics
    let mut unknown_version = serde_json::to_value(order("ord-v9", "c")).unwrap();
    unknown_version["eventVersion"] = json!(9);
    let mut records: Vec<_> = (0..7)
        .map(|i| {
            record(
                &format!("m{i}"),
                &order(&format!("ord-{i}"), "c").encode().unwrap(),
                QUEUE,
                None,
            )
        })
        .collect();
    records.insert(2, record("bad-json", "{\"eventId\": oops", QUEUE, None));
    records.insert(5, record("v9", &unknown_version.to_string(), QUEUE, None));
    records.push(record(
        "panics",
        &order("ord-p", "panic").encode().unwrap(),
        QUEUE,
        None,
    ));
    let consumer = consumer();

    // WHEN processed
    let outcome = consumer
        .process(&batch(records), &Invocation::default())
        .await;

    // THEN exactly those three fail, each for its own reason, and the seven run
    assert_eq!(consumer.state.placed.load(Ordering::SeqCst), 7);
    let failed: Vec<String> = outcome
        .response()
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(failed, ["bad-json", "v9", "panics"]);
    assert!(matches!(
        outcome.get("bad-json"),
        Some(RecordOutcome::Failed(RecordError::Decode(
            crate::EventError::MalformedJson { .. }
        )))
    ));
    assert!(matches!(
        outcome.get("v9"),
        Some(RecordOutcome::Failed(RecordError::Decode(
            crate::EventError::UnsupportedVersion { version: 9, .. }
        )))
    ));
    match outcome.get("panics") {
        Some(RecordOutcome::Failed(err @ RecordError::Panic(message))) => {
            assert_eq!(message, "boom for ord-p");
            assert!(err.is_retryable());
        }
        other => panic!("expected a panic failure, got {other:?}"),
    }
}

#[tokio::test]
async fn sns_wrapped_and_raw_bodies_are_both_understood() {
    let event = order("ord-1", "c");
    let notification = json!({
        "Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Message": event.encode().unwrap(), "Timestamp": "2026-11-23T10:00:00.000Z"
    });
    let consumer = consumer();
    let outcome = consumer
        .process(
            &batch(vec![
                record("wrapped", &notification.to_string(), QUEUE, None),
                record("raw", &event.encode().unwrap(), QUEUE, None),
            ]),
            &Invocation::default(),
        )
        .await;
    assert_eq!(outcome_kinds(&outcome), ["Handled", "Handled"]);
}

#[tokio::test]
async fn unhandled_types_are_acknowledged_unless_strict() {
    let confirmed = examples::example(crate::EventType::OrderConfirmed)
        .encode()
        .unwrap();
    let lenient = consumer()
        .process(
            &batch(vec![record("c", &confirmed, QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    assert!(matches!(
        lenient.get("c"),
        Some(RecordOutcome::Ignored(crate::EventType::OrderConfirmed))
    ));
    assert!(lenient.response().batch_item_failures.is_empty());

    let strict = consumer().with_options(ConsumerOptions {
        strict: true,
        ..Default::default()
    });
    let outcome = strict
        .process(
            &batch(vec![record("c", &confirmed, QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    assert!(matches!(
        outcome.get("c"),
        Some(RecordOutcome::Failed(RecordError::Unhandled(_)))
    ));
}

#[tokio::test]
async fn fifo_group_stops_at_its_first_failure_while_other_groups_go_on() {
    // GIVEN group A: ok, flaky, ok, ok; group B: ok, ok, ok (interleaved)
    let a = |i: usize, customer: &str| order(&format!("ord-A{i}"), customer).encode().unwrap();
    let b = |i: usize| order(&format!("ord-B{i}"), "c").encode().unwrap();
    let records = vec![
        record("a0", &a(0, "c"), FIFO_QUEUE, Some("A")),
        record("b0", &b(0), FIFO_QUEUE, Some("B")),
        record("a1", &a(1, "flaky"), FIFO_QUEUE, Some("A")),
        record("b1", &b(1), FIFO_QUEUE, Some("B")),
        record("a2", &a(2, "c"), FIFO_QUEUE, Some("A")),
        record("a3", &a(3, "c"), FIFO_QUEUE, Some("A")),
        record("b2", &b(2), FIFO_QUEUE, Some("B")),
    ];
    let consumer = consumer();
    let outcome = consumer
        .process(&batch(records), &Invocation::default())
        .await;
    // THEN a1 failed, a2 and a3 did not run, all of B ran
    assert_eq!(
        outcome_kinds(&outcome),
        [
            "Handled",
            "Handled",
            "Failed",
            "Handled",
            "NotAttempted",
            "NotAttempted",
            "Handled"
        ]
    );
    assert_eq!(consumer.state.placed.load(Ordering::SeqCst), 4);
    let failed: Vec<_> = outcome
        .response()
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(failed, ["a1", "a2", "a3"]);
}

#[tokio::test]
async fn a_batch_where_everything_fails_fails_the_invocation() {
    let flaky = order("ord-1", "flaky").encode().unwrap();
    let records = vec![
        record("x", &flaky, QUEUE, None),
        record("y", "not json", QUEUE, None),
    ];
    let err = consumer()
        .handle(batch(records.clone()), Invocation::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, BatchError::AllFailed { count: 2, .. }),
        "{err}"
    );
    let tolerant = consumer().with_options(ConsumerOptions {
        fail_when_all_fail: false,
        ..Default::default()
    });
    assert_eq!(
        tolerant
            .handle(batch(records), Invocation::default())
            .await
            .unwrap()
            .batch_item_failures
            .len(),
        2
    );
    assert!(
        consumer()
            .handle(batch(vec![]), Invocation::default())
            .await
            .unwrap()
            .batch_item_failures
            .is_empty()
    );
}

#[tokio::test]
async fn records_are_not_started_when_the_deadline_is_too_close() {
    let body = order("ord-1", "c").encode().unwrap();
    let invocation = Invocation {
        request_id: "r".into(),
        deadline: Some(SystemTime::now() + Duration::from_millis(100)),
        ..Invocation::default()
    };
    let consumer = consumer();
    let outcome = consumer
        .process(&batch(vec![record("m", &body, QUEUE, None)]), &invocation)
        .await;
    assert!(matches!(
        outcome.get("m"),
        Some(RecordOutcome::NotAttempted(_))
    ));
    assert_eq!(consumer.state.placed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn duplicates_skip_the_handler_and_failures_release_the_key() {
    let store = Arc::new(InMemoryIdempotencyStore::new());
    let consumer = consumer().with_idempotency(Idempotency::new(store.clone()));
    let event = order("ord-1", "c");
    let body = event.encode().unwrap();
    let first = consumer
        .process(
            &batch(vec![record("m1", &body, QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    let again = consumer
        .process(
            &batch(vec![record("m2", &body, QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    assert_eq!(outcome_kinds(&first), ["Handled"]);
    assert_eq!(outcome_kinds(&again), ["Duplicate"]);
    assert_eq!(consumer.state.placed.load(Ordering::SeqCst), 1);
    let stored = store.get(&format!("payment#{}", event.event_id)).unwrap();
    assert_eq!(stored.status, crate::idempotency::Status::Completed);
    assert!(stored.result.unwrap().contains("\"charged\":\"40.48\""));

    // A failing handler leaves no record behind, so the retry runs it again.
    let flaky = order("ord-2", "flaky");
    let failed = consumer
        .process(
            &batch(vec![record("f", &flaky.encode().unwrap(), QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    assert_eq!(outcome_kinds(&failed), ["Failed"]);
    assert!(store.get(&format!("payment#{}", flaky.event_id)).is_none());
}

#[tokio::test]
async fn permanent_handler_errors_and_misconfiguration_are_not_retried() {
    let bad = order("ord-1", "bad").encode().unwrap();
    let outcome = consumer()
        .process(
            &batch(vec![record("b", &bad, QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    match outcome.get("b") {
        Some(RecordOutcome::Failed(err)) => assert!(
            !err.is_retryable() && err.kind() == "HandlerPermanent",
            "{err}"
        ),
        other => panic!("{other:?}"),
    }
    // A transactional handler without an idempotency store cannot run.
    let transactional = Consumer::new("inventory", Counters::default()).on_transactional(on_placed);
    let ok = order("ord-2", "c").encode().unwrap();
    let outcome = transactional
        .process(
            &batch(vec![record("t", &ok, QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    assert!(matches!(
        outcome.get("t"),
        Some(RecordOutcome::Failed(RecordError::Misconfigured(_)))
    ));
}

#[tokio::test]
async fn follow_ups_without_a_publisher_are_a_misconfiguration() {
    let consumer = Consumer::new("orders", Counters::default()).on(emits_cancellation);
    assert_eq!(
        consumer.handled_event_types(),
        [crate::EventType::OrderPlaced]
    );
    let body = order("ord-1", "c").encode().unwrap();
    let outcome = consumer
        .process(
            &batch(vec![record("e", &body, QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    assert!(matches!(
        outcome.get("e"),
        Some(RecordOutcome::Failed(RecordError::Misconfigured(_)))
    ));
}

async fn emits_cancellation(
    message: Message<OrderPlaced>,
    _: Arc<Counters>,
) -> Result<Outcome, HandlerError> {
    let cancelled = OrderCancelled {
        order_id: message.data.order_id.clone(),
        reason: crate::event::CancellationReason::CustomerRequest,
        detail: None,
    };
    Ok(Outcome::done().publish(message.follow_up(cancelled)))
}

#[test]
fn ready_refuses_a_consumer_missing_a_port_its_routes_need() {
    // A transactional route without an idempotency store.
    let err = Consumer::new("inventory", Counters::default())
        .on_transactional(on_placed)
        .emits_no_events()
        .ready()
        .err()
        .expect("refused");
    assert!(
        matches!(&err, ConsumerConfigError::TransactionalWithoutStore { event_types, .. } if event_types == &[crate::EventType::OrderPlaced]),
        "{err}"
    );
    assert!(err.to_string().contains("inventory"), "{err}");
    // Handlers and no event sink, not declared to emit none.
    let err = consumer().ready().err().expect("refused");
    assert!(
        matches!(err, ConsumerConfigError::NoEventSink { .. }),
        "{err}"
    );
    // Each given, or declared unneeded: ready.
    assert!(consumer().emits_no_events().ready().is_ok());
    assert!(
        consumer()
            .with_event_sink(Arc::new(crate::testing::RecordingSink::new()))
            .ready()
            .is_ok()
    );
    assert!(
        Consumer::new("inventory", Counters::default())
            .on_transactional(on_placed)
            .with_idempotency(Idempotency::new(Arc::new(InMemoryIdempotencyStore::new())))
            .emits_no_events()
            .ready()
            .is_ok()
    );
}

#[tokio::test]
async fn follow_ups_reach_the_event_sink_and_a_duplicate_sends_the_same_ones_again() {
    let sink = Arc::new(crate::testing::RecordingSink::new());
    let consumer = Consumer::new("orders", Counters::default())
        .on(emits_cancellation)
        .with_idempotency(Idempotency::new(Arc::new(InMemoryIdempotencyStore::new())))
        .with_event_sink(sink.clone())
        .ready()
        .expect("wired");
    let body = order("ord-1", "c").encode().unwrap();
    for id in ["first", "again"] {
        consumer
            .process(
                &batch(vec![record(id, &body, QUEUE, None)]),
                &Invocation::default(),
            )
            .await;
    }
    let sent = sink.events();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].event_type(), crate::EventType::OrderCancelled);
    // Deterministic follow-up ids: downstream idempotency absorbs the replay.
    assert_eq!(sent[0].event_id, sent[1].event_id);
}

#[tokio::test]
async fn a_permanent_failure_is_set_aside_and_a_transient_one_delayed_with_backoff() {
    let dead_letters = Arc::new(crate::testing::RecordingDeadLetters::new());
    let consumer = consumer()
        .emits_no_events()
        .with_dead_letter_sink(dead_letters.clone());
    let bad = order("ord-1", "bad").encode().unwrap();
    let flaky = order("ord-2", "flaky").encode().unwrap();
    let outcome = consumer
        .process(
            &batch(vec![
                record("b", &bad, QUEUE, None),
                record("f", &flaky, QUEUE, None),
            ]),
            &Invocation::default(),
        )
        .await;
    assert_eq!(outcome_kinds(&outcome), ["DeadLettered", "Failed"]);
    let letters = dead_letters.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].message_id, "b");
    assert_eq!(letters[0].body, bad, "set aside unchanged");
    assert_eq!(letters[0].error_kind, "HandlerPermanent");
    assert!(letters[0].error_message.contains("card token is unusable"));
    let delays = dead_letters.delays();
    assert_eq!(delays.len(), 1);
    assert_eq!(delays[0].0, "f");
    assert!(delays[0].1 >= Duration::from_secs(1), "{delays:?}");
    // Only the transient one is reported for SQS to redeliver.
    let response = outcome.response();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, ["f"]);
}

#[test]
fn the_batch_future_is_send_so_it_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let consumer = consumer();
    let (event, invocation) = (batch(vec![]), Invocation::default());
    assert_send(&consumer.process(&event, &invocation));
    assert_send(&consumer.handle(event.clone(), invocation.clone()));
}

/// An idempotency store that panics for one order and otherwise keeps records in memory.
#[derive(Debug, Default)]
struct PanicsFor {
    inner: InMemoryIdempotencyStore,
    key_part: String,
}

#[async_trait::async_trait]
impl crate::idempotency::IdempotencyStore for PanicsFor {
    async fn acquire(
        &self,
        claim: &crate::idempotency::Claim,
    ) -> Result<crate::idempotency::Acquired, crate::idempotency::IdempotencyError> {
        if claim.key.contains(&self.key_part) {
            panic!("store exploded on {}", claim.key);
        }
        self.inner.acquire(claim).await
    }
    async fn complete(
        &self,
        claim: &crate::idempotency::Claim,
        result: &str,
    ) -> Result<(), crate::idempotency::IdempotencyError> {
        self.inner.complete(claim, result).await
    }
    async fn release(
        &self,
        claim: &crate::idempotency::Claim,
    ) -> Result<(), crate::idempotency::IdempotencyError> {
        self.inner.release(claim).await
    }
    async fn commit(
        &self,
        claim: &crate::idempotency::Claim,
        result: &str,
        writes: Vec<crate::idempotency::Write>,
    ) -> Result<crate::idempotency::Committed, crate::idempotency::IdempotencyError> {
        self.inner.commit(claim, result, writes).await
    }
}

/// An SNS client whose every request panics before it is sent.
fn panicking_sns() -> aws_sdk_sns::Client {
    #[derive(Debug)]
    struct Explode;
    impl aws_sdk_sns::config::Intercept for Explode {
        fn name(&self) -> &'static str {
            "Explode"
        }
        fn read_before_execution(
            &self,
            _: &aws_sdk_sns::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
            _: &mut aws_sdk_sns::config::ConfigBag,
        ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
            panic!("publish exploded");
        }
    }
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
        .region(aws_sdk_sns::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "AKID", "SECRET", None, None, "test",
        ))
        .http_client(aws_smithy_http_client::test_util::StaticReplayClient::new(
            vec![],
        ))
        .interceptor(Explode)
        .build();
    aws_sdk_sns::Client::from_conf(config)
}

#[tokio::test]
async fn a_panic_in_idempotency_or_publishing_fails_only_its_record() {
    async fn emits_for_cancelled_customers(
        message: Message<OrderPlaced>,
        state: Arc<Counters>,
    ) -> Result<Outcome, HandlerError> {
        state.placed.fetch_add(1, Ordering::SeqCst);
        let mut outcome = Outcome::done();
        if message.data.customer_id == "emits" {
            outcome = outcome.publish(message.follow_up(OrderCancelled {
                order_id: message.data.order_id.clone(),
                reason: crate::event::CancellationReason::CustomerRequest,
                detail: None,
            }));
        }
        Ok(outcome)
    }
    // GIVEN a store that panics for ord-store and a publisher that panics on every request
    let store = PanicsFor {
        inner: InMemoryIdempotencyStore::new(),
        key_part: "ord-store".into(),
    };
    let boom = order("ord-store", "c");
    let consumer = Consumer::new("payment", Counters::default())
        .on(emits_for_cancelled_customers)
        .with_idempotency(Idempotency::new(Arc::new(PanicsFor {
            key_part: boom.event_id.to_string(),
            ..store
        })))
        .with_publisher(crate::Publisher::new(
            panicking_sns(),
            "arn:aws:sns:us-east-1:123456789012:t",
        ));
    let records = vec![
        record("ok-1", &order("ord-1", "c").encode().unwrap(), QUEUE, None),
        record("store", &boom.encode().unwrap(), QUEUE, None),
        record(
            "publish",
            &order("ord-2", "emits").encode().unwrap(),
            QUEUE,
            None,
        ),
        record("ok-2", &order("ord-3", "c").encode().unwrap(), QUEUE, None),
    ];
    // WHEN processed
    let outcome = consumer
        .process(&batch(records), &Invocation::default())
        .await;
    // THEN each panic fails its own record (for a retry), and the others are handled
    assert_eq!(
        outcome_kinds(&outcome),
        ["Handled", "Failed", "Failed", "Handled"]
    );
    for (id, text) in [("store", "store exploded"), ("publish", "publish exploded")] {
        match outcome.get(id) {
            Some(RecordOutcome::Failed(err @ RecordError::Panic(message))) => {
                assert!(message.contains(text), "{message}");
                assert!(err.is_retryable());
            }
            other => panic!("{id}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_call_that_hangs_does_not_keep_the_batch_past_its_deadline() {
    async fn hangs_for_some(
        message: Message<OrderPlaced>,
        state: Arc<Counters>,
    ) -> Result<Outcome, HandlerError> {
        if message.data.customer_id == "hang" {
            std::future::pending::<()>().await;
        }
        state.placed.fetch_add(1, Ordering::SeqCst);
        Ok(Outcome::done())
    }
    let consumer = Consumer::new("payment", Counters::default()).on(hangs_for_some);
    let deadline = SystemTime::now() + Duration::from_millis(1_500);
    let invocation = Invocation {
        request_id: "r".into(),
        deadline: Some(deadline),
        ..Invocation::default()
    };
    let records = vec![
        record("ok", &order("ord-1", "c").encode().unwrap(), QUEUE, None),
        record(
            "hangs",
            &order("ord-2", "hang").encode().unwrap(),
            QUEUE,
            None,
        ),
    ];
    let outcome = consumer.process(&batch(records), &invocation).await;
    assert!(SystemTime::now() < deadline, "answered before the deadline");
    assert_eq!(outcome_kinds(&outcome), ["Handled", "Failed"]);
    assert!(matches!(
        outcome.get("hangs"),
        Some(RecordOutcome::Failed(RecordError::DeadlineExceeded))
    ));
    let failed: Vec<_> = outcome
        .response()
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(failed, ["hangs"]);
}

#[tokio::test]
async fn an_endpoint_that_never_answers_does_not_keep_the_batch_past_its_deadline() {
    // GIVEN a DynamoDB endpoint that accepts connections and never answers
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            connections.push(socket);
        }
    });
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKID", "SECRET", None, None, "test",
            ))
            .endpoint_url(endpoint)
            .http_client(crate::aws::TrustRoots::platform().http_client())
            .timeout_config(crate::aws::timeouts())
            .build(),
    );
    let store = crate::idempotency::DynamoIdempotencyStore::new(dynamodb, "idempotency");
    let consumer = consumer().with_idempotency(Idempotency::new(Arc::new(store)));
    // WHEN a batch runs with two seconds left
    let deadline = SystemTime::now() + Duration::from_secs(2);
    let invocation = Invocation {
        request_id: "r".into(),
        deadline: Some(deadline),
        ..Invocation::default()
    };
    let body = order("ord-1", "c").encode().unwrap();
    let outcome = consumer
        .process(&batch(vec![record("m", &body, QUEUE, None)]), &invocation)
        .await;
    // THEN it answers before the deadline, the record returned for a retry
    assert!(SystemTime::now() < deadline);
    assert!(matches!(
        outcome.get("m"),
        Some(RecordOutcome::Failed(RecordError::DeadlineExceeded))
    ));
    held.abort();
}

#[tokio::test]
async fn an_sns_subscription_confirmation_is_its_own_permanent_failure() {
    let confirmation = json!({
        "Type": "SubscriptionConfirmation", "MessageId": "sns-1", "Token": "t",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "You have chosen to subscribe",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", "Timestamp": "2026-11-23T10:00:00.000Z"
    });
    let outcome = consumer()
        .process(
            &batch(vec![record("c", &confirmation.to_string(), QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    match outcome.get("c") {
        Some(RecordOutcome::Failed(err)) => {
            assert_eq!(err.kind(), "SnsSubscriptionConfirmation");
            assert!(!err.is_retryable());
            assert!(
                err.to_string()
                    .contains("arn:aws:sns:us-east-1:123456789012:t")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_client_from_the_shared_config_has_attempt_and_operation_timeouts() {
    let config = crate::aws::sdk_config().await;
    let timeouts = config.timeout_config().expect("timeouts are set");
    assert_eq!(
        timeouts.operation_attempt_timeout(),
        Some(crate::aws::ATTEMPT_TIMEOUT)
    );
    assert_eq!(
        timeouts.operation_timeout(),
        Some(crate::aws::OPERATION_TIMEOUT)
    );
    assert_eq!(
        timeouts.connect_timeout(),
        Some(crate::aws::CONNECT_TIMEOUT)
    );
}

/// An order row guarded by its version, as the orders saga keeps it; `interfere` more runs
/// find that another record changed it between their read and their commit.
#[derive(Default)]
struct Versioned {
    version: Arc<AtomicUsize>,
    runs: AtomicUsize,
    interfere: AtomicUsize,
}

async fn bump_version(
    _: Message<OrderPlaced>,
    state: Arc<Versioned>,
) -> Result<Outcome, HandlerError> {
    state.runs.fetch_add(1, Ordering::SeqCst);
    let read = state.version.load(Ordering::SeqCst);
    if state.interfere.load(Ordering::SeqCst) > 0 {
        state.interfere.fetch_sub(1, Ordering::SeqCst);
        // Another record's commit lands between this run's read and its commit.
        state.version.fetch_add(1, Ordering::SeqCst);
    }
    let (checked, changed) = (state.version.clone(), state.version.clone());
    Ok(Outcome::done().write(crate::idempotency::Write::in_memory(
        format!("order at version {read}"),
        Arc::new(move || {
            let now = checked.load(Ordering::SeqCst);
            if now == read {
                Ok(())
            } else {
                Err(format!("version is {now}, not {read}"))
            }
        }),
        Arc::new(move || {
            changed.fetch_add(1, Ordering::SeqCst);
        }),
    )))
}

fn versioned(interfere: usize) -> (Consumer<Versioned>, Arc<Versioned>) {
    let consumer = Consumer::new("orders", Versioned::default())
        .on_transactional(bump_version)
        .with_idempotency(Idempotency::new(Arc::new(InMemoryIdempotencyStore::new())));
    let state = consumer.state();
    state.interfere.store(interfere, Ordering::SeqCst);
    (consumer, state)
}

#[tokio::test]
async fn a_transactional_write_refused_on_changed_data_is_decided_again_at_once() {
    // GIVEN another record changes the order between the handler's read and its commit, once
    let (consumer, state) = versioned(1);
    let body = order("ord-1", "c").encode().unwrap();
    // WHEN the record is processed
    let outcome = consumer
        .process(
            &batch(vec![record("v", &body, QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    // THEN the handler ran again on the fresh version and its write committed, no backoff
    assert_eq!(outcome_kinds(&outcome), ["Handled"]);
    assert_eq!(state.runs.load(Ordering::SeqCst), 2);
    assert_eq!(state.version.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_write_refused_every_time_goes_back_to_the_queue_after_a_few_reruns() {
    let (consumer, state) = versioned(usize::MAX);
    let body = order("ord-1", "c").encode().unwrap();
    let outcome = consumer
        .process(
            &batch(vec![record("v", &body, QUEUE, None)]),
            &Invocation::default(),
        )
        .await;
    match outcome.get("v") {
        Some(RecordOutcome::Failed(err)) => {
            assert!(
                err.is_retryable() && err.kind() == "TransactionConflict",
                "{err}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        state.runs.load(Ordering::SeqCst),
        1 + super::idempotent::CONFLICT_RERUNS as usize
    );
}

async fn waits_for_its_order(
    _: Message<OrderPlaced>,
    _: Arc<Counters>,
) -> Result<Outcome, HandlerError> {
    Err(HandlerError::transient("the order is not known yet")
        .with_kind("OrderNotYetKnown")
        .with_first_retry_after(Duration::from_secs(2)))
}

#[tokio::test]
async fn a_cause_about_to_arrive_is_retried_soon_once_then_with_the_backoff() {
    let dead_letters = Arc::new(crate::testing::RecordingDeadLetters::new());
    let consumer = Consumer::new("orders", Counters::default())
        .on(waits_for_its_order)
        .emits_no_events()
        .with_dead_letter_sink(dead_letters.clone());
    let body = order("ord-1", "c").encode().unwrap();
    let mut third = record("third", &body, QUEUE, None);
    third["attributes"]["ApproximateReceiveCount"] = json!("3");
    consumer
        .process(
            &batch(vec![record("first", &body, QUEUE, None), third]),
            &Invocation::default(),
        )
        .await;
    let delays: std::collections::BTreeMap<String, Duration> =
        dead_letters.delays().into_iter().collect();
    // The first delivery comes back after the hint, the third after the usual backoff.
    assert_eq!(delays["first"], Duration::from_secs(2));
    let backoff = VisibilityBackoff::default();
    assert!(delays["third"] >= backoff.floor(3), "{delays:?}");
}

/// Waits for its order's `OrderPlaced` for customer `waits`, fails transiently for `flaky`.
async fn waits_or_flaky(
    message: Message<OrderPlaced>,
    _: Arc<Counters>,
) -> Result<Outcome, HandlerError> {
    match message.data.customer_id.as_str() {
        "waits" => Err(HandlerError::transient("the order is not known yet")
            .with_kind("OrderNotYetKnown")
            .waiting_for_cause()),
        _ => Err(HandlerError::transient("gateway timed out")),
    }
}

/// A record at its `receives`-th delivery, first sent `sent_ago` ago.
fn delivered(
    id: &str,
    body: &str,
    queue: &str,
    receives: u32,
    sent_ago: Duration,
) -> serde_json::Value {
    let sent = chrono::Utc::now() - sent_ago;
    let group = (queue == FIFO_QUEUE).then_some("ord-1");
    let mut record = record(id, body, queue, group);
    record["attributes"]["ApproximateReceiveCount"] = json!(receives.to_string());
    record["attributes"]["SentTimestamp"] = json!(sent.timestamp_millis().to_string());
    record
}

fn waiting_consumer(dead_letters: Arc<crate::testing::RecordingDeadLetters>) -> Consumer<Counters> {
    Consumer::new("orders", Counters::default())
        .on(waits_or_flaky)
        .emits_no_events()
        .with_dead_letter_sink(dead_letters)
}

#[tokio::test]
async fn at_the_last_receive_a_record_waiting_for_its_cause_is_sent_back_and_any_other_set_aside_with_its_reason()
 {
    let dead_letters =
        Arc::new(crate::testing::RecordingDeadLetters::new().with_max_receive_count(5));
    let consumer = waiting_consumer(dead_letters.clone());
    let waits = order("ord-1", "waits").encode().unwrap();
    let flaky = order("ord-2", "flaky").encode().unwrap();
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let outcome = consumer
        .process(
            &batch(vec![
                delivered("early", &waits, QUEUE, 3, minutes(3)),
                delivered("last", &waits, QUEUE, 4, minutes(10)),
                delivered("too-long", &waits, QUEUE, 5, minutes(61)),
                delivered("flaky", &flaky, QUEUE, 5, minutes(10)),
                delivered("flaky-4", &flaky, QUEUE, 4, minutes(10)),
            ]),
            &Invocation::default(),
        )
        .await;
    // A FIFO group keeps its order: no copy behind later messages.
    let fifo = consumer
        .process(
            &batch(vec![delivered("fifo", &waits, FIFO_QUEUE, 5, minutes(10))]),
            &Invocation::default(),
        )
        .await;
    assert_eq!(outcome_kinds(&fifo), ["DeadLettered"]);

    // Before the last receive: the usual retry. One receive before it, the waiting record goes
    // back to its queue (a crash or a lost receive cannot spend its last one). At it, the rest
    // go to the DLQ with their reasons. Only the first is left to SQS.
    assert_eq!(
        outcome_kinds(&outcome),
        [
            "Failed",
            "SentBack",
            "DeadLettered",
            "DeadLettered",
            "Failed"
        ]
    );
    let failed: Vec<_> = outcome
        .response()
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, ["early", "flaky-4"]);
    let mut delayed: Vec<String> = dead_letters
        .delays()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    delayed.sort();
    assert_eq!(delayed, ["early", "flaky-4"]);

    let sent_back = dead_letters.sent_back();
    assert_eq!(sent_back.len(), 1, "{sent_back:?}");
    assert_eq!(sent_back[0].message_id, "last");
    assert_eq!(sent_back[0].receives, 4);
    let waited = chrono::Utc::now() - sent_back[0].waiting_since;
    assert!(
        (9..=10).contains(&waited.num_minutes()),
        "the wait started when the record was first sent: {waited:?}"
    );
    let backoff = VisibilityBackoff::default();
    assert!(
        sent_back[0].delay >= backoff.floor(4) && sent_back[0].delay <= backoff.ceiling(4),
        "{sent_back:?}"
    );

    let mut letters: Vec<(String, String)> = dead_letters
        .letters()
        .into_iter()
        .map(|l| (l.message_id, l.error_kind))
        .collect();
    letters.sort();
    assert_eq!(
        letters,
        [
            ("fifo".to_owned(), "OrderNotYetKnown".to_owned()),
            ("flaky".to_owned(), "HandlerTransient".to_owned()),
            ("too-long".to_owned(), "OrderNotYetKnown".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_copy_sent_back_keeps_its_wait_and_its_backoff_goes_on_from_its_earlier_receives() {
    let dead_letters =
        Arc::new(crate::testing::RecordingDeadLetters::new().with_max_receive_count(5));
    let consumer = waiting_consumer(dead_letters.clone());
    let waits = order("ord-1", "waits").encode().unwrap();
    let since = chrono::Utc::now() - chrono::Duration::minutes(20);
    let copy = |id: &str, receives: u32| {
        let mut copy = delivered(id, &waits, QUEUE, receives, Duration::from_secs(30));
        copy["messageAttributes"] = json!({
            "orderflowWaitingSince": {"stringValue": since.timestamp_millis().to_string(), "dataType": "Number"},
            "orderflowEarlierReceives": {"stringValue": "5", "dataType": "Number"},
        });
        copy
    };
    let outcome = consumer
        .process(
            &batch(vec![copy("copy-1", 1), copy("copy-5", 5)]),
            &Invocation::default(),
        )
        .await;
    assert_eq!(outcome_kinds(&outcome), ["Failed", "SentBack"]);
    // Its 6th delivery in all: the backoff for 6, not a first retry.
    let backoff = VisibilityBackoff::default();
    let delays = dead_letters.delays();
    assert!(delays[0].1 >= backoff.floor(6), "{delays:?}");
    let sent_back = dead_letters.sent_back();
    assert_eq!(sent_back[0].receives, 10);
    assert_eq!(
        sent_back[0].waiting_since.timestamp_millis(),
        since.timestamp_millis(),
        "the wait is counted from the first copy"
    );

    // Past the limit, the next copy goes to the DLQ with its reason.
    let impatient = waiting_consumer(dead_letters.clone()).with_options(ConsumerOptions {
        max_wait_for_cause: Duration::from_secs(15 * 60),
        ..ConsumerOptions::default()
    });
    let outcome = impatient
        .process(&batch(vec![copy("copy-5b", 5)]), &Invocation::default())
        .await;
    assert_eq!(outcome_kinds(&outcome), ["DeadLettered"]);
    assert_eq!(dead_letters.sent_back().len(), 1);
}

#[tokio::test]
async fn without_a_known_receive_budget_a_waiting_record_is_left_to_the_redrive_policy() {
    let dead_letters = Arc::new(crate::testing::RecordingDeadLetters::new());
    let consumer = waiting_consumer(dead_letters.clone());
    let waits = order("ord-1", "waits").encode().unwrap();
    let outcome = consumer
        .process(
            &batch(vec![delivered(
                "r",
                &waits,
                QUEUE,
                50,
                Duration::from_secs(60),
            )]),
            &Invocation::default(),
        )
        .await;
    assert_eq!(outcome_kinds(&outcome), ["Failed"]);
    assert!(dead_letters.sent_back().is_empty() && dead_letters.letters().is_empty());
}

/// Takes its time, as a call to a payment gateway or a mail service does.
async fn slow_charge(
    _: Message<OrderPlaced>,
    state: Arc<Counters>,
) -> Result<Outcome, HandlerError> {
    tokio::time::sleep(Duration::from_millis(30)).await;
    state.placed.fetch_add(1, Ordering::SeqCst);
    Ok(Outcome::done())
}

/// A fresh in-memory store, with the completed-keys cache or without it.
fn in_memory_idempotency(cached: bool) -> Idempotency {
    let idempotency = Idempotency::new(Arc::new(InMemoryIdempotencyStore::new()));
    if cached {
        idempotency.with_cache(std::num::NonZeroUsize::MIN)
    } else {
        idempotency
    }
}

#[tokio::test]
async fn copies_of_one_event_in_one_batch_take_turns_and_the_later_is_a_duplicate() {
    // GIVEN one event delivered twice in one batch (SNS and a relay both deliver at least
    // once), a handler slow enough that the copies would overlap, with and without the cache
    for cached in [false, true] {
        let consumer = Consumer::new("notification", Counters::default())
            .on(slow_charge)
            .with_idempotency(in_memory_idempotency(cached));
        let body = order("ord-1", "c").encode().unwrap();
        let other = order("ord-2", "c").encode().unwrap();
        // WHEN the batch runs its records concurrently
        let outcome = consumer
            .process(
                &batch(vec![
                    record("copy-1", &body, QUEUE, None),
                    record("other", &other, QUEUE, None),
                    record("copy-2", &body, QUEUE, None),
                ]),
                &Invocation::default(),
            )
            .await;
        // THEN the effect happened once per event, and the second copy is acknowledged as a
        // duplicate instead of meeting the first one's hold and going back to the queue (where
        // a copy at its last receive would be moved to the DLQ)
        assert_eq!(
            outcome_kinds(&outcome),
            ["Handled", "Handled", "Duplicate"],
            "cache: {cached}"
        );
        assert_eq!(consumer.state.placed.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn copies_of_one_event_in_one_batch_commit_once_and_the_cache_spares_the_rerun() {
    for cached in [false, true] {
        let consumer = Consumer::new("orders", Versioned::default())
            .on_transactional(bump_version)
            .with_idempotency(in_memory_idempotency(cached));
        let body = order("ord-1", "c").encode().unwrap();
        let outcome = consumer
            .process(
                &batch(vec![
                    record("copy-1", &body, QUEUE, None),
                    record("copy-2", &body, QUEUE, None),
                ]),
                &Invocation::default(),
            )
            .await;
        assert_eq!(
            outcome_kinds(&outcome),
            ["Handled", "Duplicate"],
            "cache: {cached}"
        );
        let state = consumer.state();
        assert_eq!(state.version.load(Ordering::SeqCst), 1, "one commit");
        // Without the cache the later copy decides again and its commit is refused (the
        // transaction finds the record completed); with it, its turn finds the outcome first.
        let runs = if cached { 1 } else { 2 };
        assert_eq!(state.runs.load(Ordering::SeqCst), runs, "cache: {cached}");
    }
}
