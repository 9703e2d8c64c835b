//! What the consumer logs about each record, as CloudWatch Logs Insights will read it (the
//! queries saved in `infra/template.yaml` use these fields): one `record done` line per record
//! with its outcome, error kind and duration, inside a span naming the record and its event;
//! never a payload (bodies carry emails and addresses).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use orderflow::consume::{Consumer, HandlerError, Invocation, Message, Outcome};
use orderflow::event::{OrderPlaced, examples};
use orderflow::testing::{LogCapture, TestConsumer, sqs_event};
use serde_json::Value;

/// Accepts every order, except a `flaky` customer's: that fails and comes back.
async fn accept(order: Message<OrderPlaced>, _: Arc<()>) -> Result<Outcome, HandlerError> {
    if order.data.customer_id == "flaky" {
        return Err(HandlerError::transient("the gateway timed out"));
    }
    Ok(Outcome::done())
}

/// `orders` in one FIFO message group.
fn fifo_group(orders: &[orderflow::Event]) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut batch = sqs_event::raw(orders, "arn:aws:sqs:us-east-1:1:q.fifo").unwrap();
    for record in &mut batch.records {
        record
            .attributes
            .insert("MessageGroupId".into(), "ord-1001".into());
    }
    batch
}

#[tokio::test]
async fn each_record_ends_with_one_line_saying_how_and_how_long() {
    let captured = LogCapture::new();
    let _capture = captured.install();
    let consumer =
        TestConsumer::new(Consumer::new("shop", ()).on(accept).emits_no_events()).unwrap();
    let placed = examples::order_placed();

    consumer.deliver(&placed).await.unwrap();
    consumer.deliver(&placed).await.unwrap();
    consumer.deliver_body("{not json").await;
    // A message sent in a traced request: its trace header is on the record's lines.
    let trace = "Root=1-6b116f05-c3bea2d09b67c30fbd66479b;Parent=56befe36875471a8;Sampled=1";
    let mut traced =
        sqs_event::raw(&[examples::order_placed()], "arn:aws:sqs:us-east-1:1:q").unwrap();
    traced.records[0]
        .attributes
        .insert("AWSTraceHeader".into(), trace.into());
    consumer
        .consumer()
        .process(&traced, &Invocation::default())
        .await;
    // A FIFO group whose first message fails: the second is not attempted, and says so.
    let mut flaky = examples::order_placed();
    if let orderflow::event::EventPayload::OrderPlaced(order) = &mut flaky.payload {
        order.customer_id = "flaky".into();
    }
    let group = fifo_group(&[flaky, examples::order_placed()]);
    consumer
        .consumer()
        .process(&group, &Invocation::default())
        .await;
    // A record past the deadline margin is not started, and says so too.
    let late = Invocation {
        request_id: "late".into(),
        deadline: Some(std::time::SystemTime::now()),
        ..Invocation::default()
    };
    let batch = sqs_event::raw(&[examples::order_placed()], "arn:aws:sqs:us-east-1:1:q").unwrap();
    consumer.consumer().process(&batch, &late).await;

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
        [
            "handled",
            "duplicate",
            "dead_lettered",
            "handled",
            "failed",
            "not_attempted",
            "not_attempted"
        ],
        "{lines:#?}"
    );
    assert_eq!(done[3]["trace_header"], trace);
    assert!(done[0].get("trace_header").is_none());
    for line in &done {
        assert!(line["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
        // Flat: the record span's fields at the top level, once.
        assert!(line["message_id"].is_string(), "{line}");
        assert!(
            line.get("span").is_none() && line.get("spans").is_none(),
            "{line}"
        );
    }
    for text in captured.text().lines() {
        let keys = keys_of(text);
        let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "a key twice: {text}");
    }
    for line in [done[0], done[1]] {
        let span = line;
        assert_eq!(span["event_type"], "OrderPlaced");
        assert_eq!(span["aggregate_id"], "ord-1001");
        assert_eq!(span["correlation_id"], placed.correlation_id.as_str());
        assert_eq!(span["event_id"], placed.event_id.to_string().as_str());
    }
    assert_eq!(done[2]["kind"], "MalformedJson");
    assert_eq!(done[4]["kind"], "HandlerTransient");
    assert!(done[5]["message_id"].is_string());
    assert!(done[0].get("kind").is_none());

    // No payload at info level: neither the customer's email nor their address.
    let everything = captured.text();
    for private in ["ada@example.com", "St James", "SW1Y"] {
        assert!(
            !everything.contains(private),
            "{private} logged:\n{everything}"
        );
    }
}

/// The keys of a JSON object line, in order, repeats included (`serde_json::Value` would keep
/// the last of two silently).
fn keys_of(line: &str) -> Vec<String> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    use serde::Deserializer;
    serde_json::Deserializer::from_str(line)
        .deserialize_map(Keys)
        .expect("a JSON object")
}
