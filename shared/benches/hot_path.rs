//! What every record pays: decoding and validating an event, encoding one, and a 10-record
//! batch through the consumer (SNS unwrapping, decode, routing, in-memory idempotency, handler).
//! `make bench` runs these; targets are in README (Benchmarks), never in timed tests.

// Benchmark code: a failed call is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow::Event;
use orderflow::consume::{Consumer, HandlerError, Invocation, Message, Outcome};
use orderflow::event::{OrderPlaced, examples};
use orderflow::idempotency::{Idempotency, InMemoryIdempotencyStore};

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

fn consumer_batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let consumer = Consumer::new("bench", ())
        .on(noop)
        .with_idempotency(Idempotency::new(Arc::new(InMemoryIdempotencyStore::new())));
    c.bench_function(
        "consume 10 SNS-wrapped records (in-memory idempotency)",
        |b| {
            // A fresh batch each time: new event ids, so every record takes the acquire path.
            b.iter_batched(
                || batch(10),
                |event| runtime.block_on(consumer.process(&event, &Invocation::default())),
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

criterion_group!(benches, event_codec, consumer_batch);
criterion_main!(benches);
