//! What the consumer logs about each record, as CloudWatch Logs Insights will read it (the
//! queries saved in `infra/template.yaml` use these fields): one `record done` line per record
//! with its outcome, error kind and duration, inside a span naming the record and its event;
//! never a payload (bodies carry emails and addresses).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use orderflow::consume::{Consumer, HandlerError, Message, Outcome};
use orderflow::event::{OrderPlaced, examples};
use orderflow::testing::TestConsumer;
use serde_json::Value;

/// Keeps every line the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

async fn accept(_: Message<OrderPlaced>, _: Arc<()>) -> Result<Outcome, HandlerError> {
    Ok(Outcome::done())
}

#[tokio::test]
async fn each_record_ends_with_one_line_saying_how_and_how_long() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The subscriber orderflow::telemetry::init installs inside Lambda, writing here.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let consumer =
        TestConsumer::new(Consumer::new("shop", ()).on(accept).emits_no_events()).unwrap();
    let placed = examples::order_placed();

    consumer.deliver(&placed).await.unwrap();
    consumer.deliver(&placed).await.unwrap();
    consumer.deliver_body("{not json").await;

    let lines = captured.lines();
    let done: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "record done")
        .collect();
    let outcomes: Vec<&str> = done
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["handled", "duplicate", "dead_lettered"],
        "{lines:#?}"
    );
    for line in &done {
        assert!(line["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
        assert_eq!(line["span"]["name"], "record", "{line}");
        assert!(line["span"]["message_id"].is_string(), "{line}");
    }
    for line in &done[..2] {
        let span = &line["span"];
        assert_eq!(span["event_type"], "OrderPlaced");
        assert_eq!(span["aggregate_id"], "ord-1001");
        assert_eq!(span["correlation_id"], placed.correlation_id.as_str());
        assert_eq!(span["event_id"], placed.event_id.to_string().as_str());
    }
    assert_eq!(done[2]["kind"], "MalformedJson");
    assert!(done[0].get("kind").is_none());

    // No payload at info level: neither the customer's email nor their address.
    let everything = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for private in ["ada@example.com", "St James", "SW1Y"] {
        assert!(
            !everything.contains(private),
            "{private} logged:\n{everything}"
        );
    }
}
