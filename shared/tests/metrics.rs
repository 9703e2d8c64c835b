//! The invocation's metrics: what the consumer counts, and the EMF documents it writes, checked
//! against the EMF specification (`tests/fixtures/emf.schema.json` plus the rules a schema
//! cannot state: every declared metric and dimension present at the root, with the right type).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use orderflow::consume::{
    Consumer, DuplicateBy, HandlerError, Invocation, Message, Outcome, RecordOutcome,
};
use orderflow::event::{EventType, OrderPlaced, PaymentProcessed, examples};
use orderflow::idempotency::{Idempotency, InMemoryIdempotencyStore, Write as EffectWrite};
use orderflow::telemetry::metrics::{EmfMetrics, InvocationMetrics, MetricsConfig, MetricsSink};
use orderflow::testing::{RecordingDeadLetters, RecordingMetrics, RecordingSink, sqs_event};
use serde_json::{Value, json};

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:payment";

async fn charge(order: Message<OrderPlaced>, _: Arc<()>) -> Result<Outcome, HandlerError> {
    if order.data.customer_id == "cust-outage" {
        return Err(HandlerError::transient("the gateway is down"));
    }
    let paid = PaymentProcessed {
        order_id: order.data.order_id.clone(),
        payment_id: format!("pay-{}", order.data.order_id),
        amount: order.data.total,
        currency: order.data.currency.clone(),
    };
    Ok(Outcome::done().publish(order.follow_up(paid)))
}

async fn count(_: Message<PaymentProcessed>, _: Arc<()>) -> Result<Outcome, HandlerError> {
    Ok(Outcome::done().write(EffectWrite::in_memory(
        "payments + 1",
        Arc::new(|| Ok(())),
        Arc::new(|| {}),
    )))
}

/// A consumer on `store`, with a cache of completed keys or without one.
fn consumer(
    store: &Arc<InMemoryIdempotencyStore>,
    cached: bool,
    metrics: Arc<RecordingMetrics>,
) -> Consumer<()> {
    let mut idempotency = Idempotency::new(store.clone());
    if cached {
        idempotency = idempotency.with_cache(std::num::NonZeroUsize::new(16).expect("16"));
    }
    Consumer::new("payment", ())
        .on(charge)
        .on_transactional(count)
        .with_idempotency(idempotency)
        .with_event_sink(Arc::new(RecordingSink::new()))
        .with_dead_letter_sink(Arc::new(RecordingDeadLetters::new()))
        .with_metrics(metrics)
}

fn placed(order: &str, customer: &str) -> orderflow::Event {
    let mut event = examples::order_placed();
    event.aggregate_id = order.to_owned();
    if let orderflow::EventPayload::OrderPlaced(data) = &mut event.payload {
        data.order_id = order.to_owned();
        data.customer_id = customer.to_owned();
    }
    event
}

#[tokio::test]
async fn an_invocations_metrics_count_every_outcome_and_how_each_duplicate_was_found() {
    let store = Arc::new(InMemoryIdempotencyStore::new());
    let metrics = Arc::new(RecordingMetrics::new());
    let warm = consumer(&store, true, metrics.clone());
    let paid = examples::caused_by(&placed("ord-1", "cust-1"), EventType::PaymentProcessed);
    let bodies = [
        placed("ord-1", "cust-1").encode().unwrap(),
        placed("ord-2", "cust-outage").encode().unwrap(),
        paid.encode().unwrap(),
        examples::example(EventType::OrderConfirmed)
            .encode()
            .unwrap(),
        "{not json".to_owned(),
    ];
    let first = Invocation {
        request_id: "req-1".into(),
        cold_start: true,
        ..Invocation::default()
    };
    warm.handle(sqs_event::bodies_as_records(&bodies, QUEUE), first)
        .await
        .unwrap();
    // Delivered again: the same consumer finds ord-1 in its cache; a fresh environment (no
    // cache) finds it in the idempotency record, and the transactional commit of the payment
    // is cancelled because its record is completed.
    let again = sqs_event::bodies_as_records(&bodies[..1], QUEUE);
    warm.handle(again.clone(), Invocation::default())
        .await
        .unwrap();
    let cold = consumer(&store, false, metrics.clone());
    let both = sqs_event::bodies_as_records(&[bodies[0].clone(), bodies[2].clone()], QUEUE);
    cold.handle(both, Invocation::default()).await.unwrap();

    let invocations = metrics.invocations();
    assert_eq!(invocations.len(), 3);
    let first = &invocations[0];
    assert_eq!(first.request_id, "req-1");
    assert!(first.cold_start);
    assert_eq!(first.received, 5);
    // ord-1 handled, PaymentProcessed handled, OrderConfirmed ignored (no handler).
    assert_eq!(first.succeeded, 3);
    assert_eq!(first.ignored, 1);
    assert_eq!(first.failed, 1, "the outage is returned for a retry");
    assert_eq!(first.dead_lettered.get("MalformedJson"), Some(&1));
    assert_eq!(first.dead_lettered_total(), 1);
    assert_eq!(first.duplicates_total(), 0);
    assert_eq!(first.follow_ups, 1);
    assert_eq!(first.handler_ms.len(), 5, "one duration per record");
    assert_eq!(
        first.event_age_ms.len(),
        4,
        "every decoded record has an age"
    );
    assert!(first.event_age_ms.iter().all(|age| *age > 0.0));

    let cached = &invocations[1];
    assert!(!cached.cold_start);
    assert_eq!((cached.received, cached.succeeded), (1, 1));
    assert_eq!(cached.duplicates_total(), 1);
    assert_eq!(cached.duplicates_found_by(DuplicateBy::Cache), 1);
    assert_eq!(
        cached.follow_ups, 1,
        "a duplicate publishes its stored follow-up again"
    );

    let fresh = &invocations[2];
    assert_eq!(fresh.duplicates_total(), 2);
    assert_eq!(fresh.duplicates_found_by(DuplicateBy::Record), 1);
    assert_eq!(fresh.duplicates_found_by(DuplicateBy::Transaction), 1);
    assert_eq!(fresh.succeeded, 2);
    assert_eq!(fresh.follow_ups, 1, "ord-1's stored follow-up again");
}

#[tokio::test]
async fn records_not_attempted_count_as_failed_without_a_duration() {
    let metrics = Arc::new(RecordingMetrics::new());
    let consumer = consumer(
        &Arc::new(InMemoryIdempotencyStore::new()),
        true,
        metrics.clone(),
    );
    // A FIFO batch: in group "a" the outage fails and the order behind it is not attempted;
    // group "b" goes through.
    let fifo = "arn:aws:sqs:us-east-1:123456789012:payment.fifo";
    let mut batch = sqs_event::bodies_as_records(
        &[
            placed("ord-2", "cust-outage").encode().unwrap(),
            placed("ord-3", "cust-1").encode().unwrap(),
            placed("ord-4", "cust-1").encode().unwrap(),
        ],
        fifo,
    );
    for (record, group) in batch.records.iter_mut().zip(["a", "a", "b"]) {
        record
            .attributes
            .insert("MessageGroupId".into(), group.into());
    }
    let response = consumer.handle(batch, Invocation::default()).await.unwrap();
    assert_eq!(response.batch_item_failures.len(), 2);
    let invocation = &metrics.invocations()[0];
    assert_eq!(
        (invocation.received, invocation.failed, invocation.succeeded),
        (3, 2, 1)
    );
    assert_eq!(
        invocation.handler_ms.len(),
        2,
        "the record not attempted has no duration"
    );
    assert_eq!(invocation.follow_ups, 1);
}

#[tokio::test]
async fn process_reports_what_each_record_measured_without_a_metrics_sink() {
    let consumer = Consumer::new("payment", ())
        .on(charge)
        .with_event_sink(Arc::new(RecordingSink::new()));
    let outcome = consumer
        .process(
            &sqs_event::raw(&[placed("ord-2", "cust-1")], QUEUE).unwrap(),
            &Invocation::default(),
        )
        .await;
    assert!(matches!(outcome.records[0].1, RecordOutcome::Handled));
    let stats = &outcome.stats[0];
    assert_eq!(stats.follow_ups, 1);
    assert!(stats.duration > std::time::Duration::ZERO);
    assert!(
        stats
            .event_age
            .is_some_and(|age| age > std::time::Duration::ZERO)
    );
    assert_eq!(stats.duplicate_by, None);
}

/// A writer tests can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config() -> MetricsConfig {
    MetricsConfig {
        namespace: Some("orderflow-prod".into()),
        service: Some("payment".into()),
        function_name: Some("orderflow-prod-payment".into()),
    }
}

/// An invocation with everything: dead letters of two kinds, duplicates of every kind, and
/// more records than EMF allows values in one metric.
fn busy_invocation() -> InvocationMetrics {
    InvocationMetrics {
        request_id: "req-9".into(),
        trace_id: Some("Root=1-67891233-abcdef012345678912345678".into()),
        cold_start: true,
        received: 250,
        succeeded: 240,
        failed: 5,
        ignored: 2,
        dead_lettered: [("MalformedJson", 3), ("UnknownEventType", 2)].into(),
        duplicates: [
            (DuplicateBy::Cache, 4),
            (DuplicateBy::Record, 2),
            (DuplicateBy::Transaction, 1),
        ]
        .into(),
        follow_ups: 230,
        event_age_ms: (0..245).map(|i| 10.0 + f64::from(i)).collect(),
        handler_ms: (0..250).map(|i| 0.5 + f64::from(i) / 100.0).collect(),
    }
}

fn documents(metrics: &InvocationMetrics) -> Vec<Value> {
    let out = Shared::default();
    let sink =
        EmfMetrics::to_writer(&config(), "payment", Box::new(out.clone())).expect("a namespace");
    sink.record(metrics);
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn schema() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("fixtures/emf.schema.json")).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid schema")
}

/// Every way `document` breaks the EMF specification; empty if it follows it.
fn violations(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    let mut found: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    let directives = document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for directive in &directives {
        for set in directive["Dimensions"].as_array().into_iter().flatten() {
            for name in set.as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                match &document[name] {
                    Value::String(v) if !v.is_empty() && v.len() <= 1024 => {}
                    other => found.push(format!("dimension {name} is {other}, not a string")),
                }
            }
        }
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let name = metric["Name"].as_str().unwrap_or_default();
            let ok = match &document[name] {
                Value::Number(_) => true,
                Value::Array(values) => values.len() <= 100 && values.iter().all(Value::is_number),
                Value::Object(set) => {
                    let numbers = |key: &str| {
                        set.get(key)
                            .and_then(Value::as_array)
                            .filter(|a| a.iter().all(Value::is_number))
                            .map(Vec::len)
                    };
                    numbers("Values").is_some_and(|n| n <= 100)
                        && numbers("Values") == numbers("Counts")
                }
                _ => false,
            };
            if !ok {
                found.push(format!("metric {name} is {}", document[name]));
            }
        }
    }
    found
}

/// One record, one value each: the scalar form.
fn quiet_invocation() -> InvocationMetrics {
    InvocationMetrics {
        request_id: "req-1".into(),
        received: 1,
        succeeded: 1,
        event_age_ms: vec![12.5],
        handler_ms: vec![0.8],
        ..InvocationMetrics::default()
    }
}

/// The relay's kind: no durations, no trace id.
fn stream_invocation() -> InvocationMetrics {
    InvocationMetrics {
        request_id: "req-2".into(),
        received: 4,
        succeeded: 3,
        failed: 1,
        follow_ups: 2,
        ..InvocationMetrics::default()
    }
}

#[test]
fn every_document_follows_the_emf_specification() {
    let validator = schema();
    let busy = documents(&busy_invocation());
    assert_eq!(
        busy.len(),
        3,
        "the invocation and one per error kind: {busy:?}"
    );
    let quiet = documents(&quiet_invocation());
    assert_eq!(
        quiet[0]["HandlerDuration"],
        json!(0.8),
        "one value: a number"
    );
    let stream = documents(&stream_invocation());
    assert!(stream[0].get("HandlerDuration").is_none() && stream[0].get("TraceId").is_none());
    for document in busy.iter().chain(&quiet).chain(&stream) {
        let found = violations(&validator, document);
        assert!(found.is_empty(), "{found:?}\n{document}");
    }
}

#[test]
fn a_quiet_invocations_document_leaves_out_the_counters_that_stayed_zero() {
    let quiet = &documents(&quiet_invocation())[0];
    let declared: Vec<&str> = quiet["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    // The batch counters stay, zeros included: a failure rate or an alarm has its data points.
    for name in ["RecordsReceived", "RecordsSucceeded", "RecordsFailed"] {
        assert!(declared.contains(&name), "{name}: {quiet}");
    }
    assert_eq!(quiet["RecordsFailed"], 0);
    for name in [
        "ColdStart",
        "RecordsDeadLettered",
        "RecordsIgnored",
        "DuplicatesSkipped",
        "DuplicatesFromCache",
        "DuplicatesFromRecord",
        "DuplicatesFromTransaction",
        "FollowUpsPublished",
    ] {
        assert!(
            !declared.contains(&name) && quiet.get(name).is_none(),
            "{name} is zero in this invocation: {quiet}"
        );
    }
}

#[test]
fn the_checks_catch_a_document_that_breaks_the_specification() {
    let validator = schema();
    let good = documents(&busy_invocation()).remove(0);
    let mut broken = Vec::new();
    let mut no_timestamp = good.clone();
    no_timestamp["_aws"]
        .as_object_mut()
        .unwrap()
        .remove("Timestamp");
    broken.push(no_timestamp);
    let mut missing_metric = good.clone();
    missing_metric
        .as_object_mut()
        .unwrap()
        .remove("RecordsReceived");
    broken.push(missing_metric);
    let mut numeric_dimension = good.clone();
    numeric_dimension["Service"] = json!(7);
    broken.push(numeric_dimension);
    let mut too_many_values = good.clone();
    too_many_values["RecordsFailed"] = json!((0..101).collect::<Vec<_>>());
    broken.push(too_many_values);
    let mut too_many_dimensions = good.clone();
    too_many_dimensions["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
        json!([(0..31).map(|i| format!("D{i}")).collect::<Vec<_>>()]);
    broken.push(too_many_dimensions);
    let mut bad_unit = good.clone();
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Fortnights");
    broken.push(bad_unit);
    let mut text_in_a_histogram = good;
    text_in_a_histogram["HandlerDuration"]["Values"][0] = json!("fast");
    broken.push(text_in_a_histogram);
    for document in &broken {
        assert!(
            !violations(&validator, document).is_empty(),
            "not caught: {document}"
        );
    }
}

#[test]
fn the_invocations_document_names_the_namespace_service_and_units() {
    let documents = documents(&busy_invocation());
    let invocation = &documents[0];
    let directive = &invocation["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "orderflow-prod");
    assert_eq!(directive["Dimensions"], json!([["Service"]]));
    assert_eq!(invocation["Service"], "payment");
    assert_eq!(invocation["FunctionName"], "orderflow-prod-payment");
    assert_eq!(invocation["RequestId"], "req-9");
    assert_eq!(
        invocation["TraceId"],
        "Root=1-67891233-abcdef012345678912345678"
    );
    let unit = |name: &str| {
        directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Name"] == name)
            .and_then(|m| m.get("Unit").cloned())
    };
    assert_eq!(unit("HandlerDuration"), Some(json!("Milliseconds")));
    assert_eq!(unit("EventAge"), Some(json!("Milliseconds")));
    for (name, value) in [
        ("RecordsReceived", 250),
        ("RecordsSucceeded", 240),
        ("RecordsFailed", 5),
        ("RecordsDeadLettered", 5),
        ("RecordsIgnored", 2),
        ("DuplicatesSkipped", 7),
        ("DuplicatesFromCache", 4),
        ("DuplicatesFromRecord", 2),
        ("DuplicatesFromTransaction", 1),
        ("FollowUpsPublished", 230),
        ("ColdStart", 1),
    ] {
        assert_eq!(invocation[name], value, "{name}");
        assert_eq!(
            unit(name),
            Some(json!("Count")),
            "{name} is declared a count"
        );
    }
    // 250 durations in at most 100 buckets, nothing lost.
    let durations = &invocation["HandlerDuration"];
    let counts: u64 = durations["Counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(counts, 250);
    let by_kind: Vec<(Value, Value)> = documents[1..]
        .iter()
        .map(|d| (d["ErrorKind"].clone(), d["RecordsDeadLettered"].clone()))
        .collect();
    assert_eq!(
        by_kind,
        [
            (json!("MalformedJson"), json!(3)),
            (json!("UnknownEventType"), json!(2))
        ]
    );
    assert_eq!(
        documents[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Service", "ErrorKind"]])
    );
}
