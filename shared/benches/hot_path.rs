//! What every record pays: decoding and validating an event, encoding one, and a 10-record
//! batch through the consumer, from the bytes Lambda hands the runtime (the SQS event's JSON →
//! SNS unwrap → decode + validate → route → in-memory idempotency or none → a no-op handler).
//! `make bench` runs these and writes `bench/REPORT.md`; targets live there, never in timed
//! tests.

// Benchmark code: a failed call is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::borrow::Cow;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow::Event;
use orderflow::consume::{Consumer, HandlerError, Invocation, Message, Outcome};
use orderflow::event::{OrderPlaced, examples};
use orderflow::idempotency::{Idempotency, InMemoryIdempotencyStore};
use orderflow::telemetry::metrics::{EmfMetrics, InvocationMetrics, MetricsConfig, MetricsSink};

async fn noop(_: Message<OrderPlaced>, _: Arc<()>) -> Result<Outcome, HandlerError> {
    Ok(Outcome::done())
}

fn batch(n: usize) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let notification = serde_json::json!({
                "Type": "Notification", "MessageId": format!("sns-{i}"),
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:events",
                "Message": examples::order_placed().encode().unwrap()
            });
            serde_json::json!({
                "messageId": format!("m{i}"), "receiptHandle": "rh", "body": notification.to_string(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:payment", "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({"Records": records})).unwrap()
}

fn event_codec(c: &mut Criterion) {
    let event = examples::order_placed();
    let json = event.encode().unwrap();
    c.bench_function("decode OrderPlaced", |b| {
        b.iter(|| Event::decode(black_box(json.as_bytes())).unwrap())
    });
    c.bench_function("encode OrderPlaced", |b| {
        b.iter(|| black_box(&event).encode().unwrap())
    });
}

/// The batch the Powertools comparison reads too (`bench/powertools_bench.py`): 10 SQS records,
/// each an SNS notification wrapping an `OrderPlaced`.
const BATCH_FILE: &[u8] = include_bytes!("../../bench/sqs-batch-10.json");
/// The same 10 events as raw message delivery hands them over (what `infra/template.yaml`
/// subscribes with): the body is the event itself, its attributes SQS message attributes.
const RAW_BATCH_FILE: &[u8] = include_bytes!("../../bench/sqs-batch-10-raw.json");

/// The batch as a function reads it: `lambda_runtime` deserializes each invocation's payload
/// through `serde_path_to_error` (so a bad payload's error names its field), which tracks the
/// path of every field it reads, not only a bad one's.
fn read_as_the_runtime_does(bytes: &[u8]) -> aws_lambda_events::event::sqs::SqsEvent {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes)).unwrap()
}

/// A batch file as the least any consumer of it reads it: each record's body, nothing else.
#[derive(serde::Deserialize)]
struct LeastBatch<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<LeastRecord<'a>>,
}

/// A record's body, borrowed unless an escape forces a copy.
#[derive(serde::Deserialize)]
struct LeastRecord<'a> {
    #[serde(borrow)]
    body: Cow<'a, str>,
}

/// An SNS notification's `Message`, nothing else.
#[derive(serde::Deserialize)]
struct LeastNotification<'a> {
    #[serde(rename = "Message", borrow)]
    message: Cow<'a, str>,
}

/// Every JSON layer of a batch file read once, keeping only what the next layer needs: the
/// bodies out of the batch, each SNS body's message out of its notification (`wrapped`), then
/// the event skipped, not decoded. No consumer of these files can read less with serde_json.
fn every_layer_read(file: &[u8], wrapped: bool) {
    let batch: LeastBatch<'_> = serde_json::from_slice(file).unwrap();
    for record in &batch.records {
        let notification;
        let event = if wrapped {
            notification = serde_json::from_str::<LeastNotification<'_>>(&record.body).unwrap();
            &notification.message
        } else {
            &record.body
        };
        black_box(serde_json::from_str::<serde::de::IgnoredAny>(event).unwrap());
    }
}

/// What reading the batch files costs before any of our code runs: into `aws_lambda_events`'
/// `SqsEvent` (what the runtime hands the consumer) by serde_json alone and as the runtime
/// reads it, merely skipped by serde_json (the least any reader of the JSON does), and every
/// layer read with the event skipped (the least any consumer of it does).
fn reading_the_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("read the batch file (10 records)");
    for (name, file, wrapped) in [
        ("SNS-wrapped", BATCH_FILE, true),
        ("raw delivery", RAW_BATCH_FILE, false),
    ] {
        group.bench_function(format!("{name}, into SqsEvent"), |b| {
            b.iter(|| {
                serde_json::from_slice::<aws_lambda_events::event::sqs::SqsEvent>(black_box(file))
                    .unwrap()
            })
        });
        group.bench_function(
            format!("{name}, into SqsEvent as lambda_runtime reads it"),
            |b| b.iter(|| read_as_the_runtime_does(black_box(file))),
        );
        group.bench_function(format!("{name}, skipped"), |b| {
            b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(file)).unwrap())
        });
        group.bench_function(
            format!("{name}, every layer read, the event skipped"),
            |b| b.iter(|| every_layer_read(black_box(file), wrapped)),
        );
    }
    group.finish();
}

fn consumer_batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let decode = |bytes: &[u8]| -> aws_lambda_events::event::sqs::SqsEvent {
        serde_json::from_slice(bytes).unwrap()
    };
    let check = |outcome: &orderflow::consume::BatchOutcome| {
        assert!(
            outcome.records.len() == 10
                && outcome
                    .records
                    .iter()
                    .all(|(_, o)| matches!(o, orderflow::consume::RecordOutcome::Handled)),
            "every record of the batch file is handled: {outcome:?}"
        );
    };
    for file in [BATCH_FILE, RAW_BATCH_FILE] {
        check(
            &runtime.block_on(
                Consumer::new("bench", ())
                    .on(noop)
                    .process(&decode(file), &Invocation::default()),
            ),
        );
    }
    let mut group = c.benchmark_group("consume the batch file (10 records, from its JSON)");
    let bare = Consumer::new("bench", ()).on(noop);
    group.bench_function("no idempotency", |b| {
        b.iter(|| {
            runtime
                .block_on(bare.process(&decode(black_box(BATCH_FILE)), &Invocation::default()))
                .response()
        })
    });
    group.bench_function("no idempotency, read as lambda_runtime reads it", |b| {
        b.iter(|| {
            runtime
                .block_on(bare.process(
                    &read_as_the_runtime_does(black_box(BATCH_FILE)),
                    &Invocation::default(),
                ))
                .response()
        })
    });
    group.bench_function("raw delivery, no idempotency", |b| {
        b.iter(|| {
            runtime
                .block_on(bare.process(&decode(black_box(RAW_BATCH_FILE)), &Invocation::default()))
                .response()
        })
    });
    group.bench_function("in-memory idempotency", |b| {
        // A fresh store each time, so every record takes the acquire path (not the duplicate one).
        b.iter_batched(
            || {
                Consumer::new("bench", ())
                    .on(noop)
                    .with_idempotency(Idempotency::new(Arc::new(InMemoryIdempotencyStore::new())))
            },
            |consumer| {
                runtime
                    .block_on(
                        consumer.process(&decode(black_box(BATCH_FILE)), &Invocation::default()),
                    )
                    .response()
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// What telemetry adds: the same batch through `Consumer::handle` bare, with the EMF metrics
/// sink, and with the metrics and JSON logs at info (both written to `io::sink`, so the
/// figures are formatting, not the terminal); and what metrics add to a cold start (building
/// the writer and writing the first document).
fn telemetry(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = MetricsConfig {
        namespace: Some("orderflow-bench".into()),
        service: None,
        function_name: Some("orderflow-bench-payment".into()),
    };
    let consumer = || {
        Consumer::new("bench", ())
            .on(noop)
            .with_idempotency(Idempotency::new(Arc::new(InMemoryIdempotencyStore::new())))
    };
    let bare = consumer();
    let measured = consumer().with_metrics(Arc::new(
        EmfMetrics::to_writer(&config, "bench", Box::new(std::io::sink())).unwrap(),
    ));
    let mut group = c.benchmark_group("telemetry: handle 10 SNS-wrapped records");
    group.bench_function("no metrics, no log subscriber", |b| {
        b.iter_batched(
            || batch(10),
            |event| runtime.block_on(bare.handle(event, Invocation::default())),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("EMF metrics", |b| {
        b.iter_batched(
            || batch(10),
            |event| runtime.block_on(measured.handle(event, Invocation::default())),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("EMF metrics and JSON logs at info", |b| {
        use tracing_subscriber::layer::SubscriberExt;
        // The functions' JSON lines (`orderflow::telemetry::init` inside Lambda), at info.
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(orderflow::telemetry::json_lines(std::io::sink));
        let _logging = tracing::subscriber::set_default(subscriber);
        b.iter_batched(
            || batch(10),
            |event| runtime.block_on(measured.handle(event, Invocation::default())),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
    let first = InvocationMetrics {
        request_id: "r".into(),
        cold_start: true,
        received: 10,
        succeeded: 10,
        handler_ms: vec![0.1; 10],
        event_age_ms: vec![5.0; 10],
        ..InvocationMetrics::default()
    };
    c.bench_function(
        "telemetry: build the EMF writer and write the first document",
        |b| {
            b.iter(|| {
                let sink =
                    EmfMetrics::to_writer(&config, "bench", Box::new(std::io::sink())).unwrap();
                sink.record(black_box(&first));
            })
        },
    );
}

criterion_group!(
    benches,
    event_codec,
    reading_the_batch,
    consumer_batch,
    telemetry
);
criterion_main!(benches);
