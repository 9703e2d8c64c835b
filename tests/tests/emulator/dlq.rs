//! Operating a DLQ with `orderflow dlq` and the library under it: what the real payment
//! consumer dead-lettered is listed by kind without being taken, replayed after its cause is
//! fixed and applied once; the tool refuses what is not a DLQ and purges only when told.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use orderflow::consume::{ConsumerEnv, Invocation, RecordOutcome};
use orderflow::dlq::{Dlq, ReplayOptions, Selection};
use orderflow::event::examples;
use orderflow_tests::{emulator, orderflow_command, run_orderflow, unique_name};
use rust_decimal::Decimal;
use serde_json::Value;

/// An order of its own (its own event id and order id).
fn order(id: &str) -> orderflow::Event {
    let mut event = examples::order_placed();
    event.event_id = uuid::Uuid::new_v4();
    event.aggregate_id = id.to_owned();
    if let orderflow::EventPayload::OrderPlaced(data) = &mut event.payload {
        data.order_id = id.to_owned();
    }
    event
}

#[tokio::test]
async fn what_a_consumer_dead_lettered_is_listed_left_in_place_and_replayed_once_after_the_fix() {
    let aws = emulator().await;
    let prefix = unique_name("dlq-tool");
    let (queue, dead) = aws.queue_with_dlq(&prefix, 5, 30).await;
    let idempotency = aws.table("dlq-tool-idempotency", "id").await;
    let payments = unique_name("payments-not-yet");
    let topic = aws.topic("dlq-tool-events", false).await;
    let consumer = payment::consumer(
        &aws.config,
        payment::Config {
            consumer: ConsumerEnv {
                idempotency_table: idempotency,
                events_topic_arn: Some(topic),
                dead_letter_queue_url: None,
                metrics: Default::default(),
            },
            payments_table: payments.clone(),
            amount_limit: Decimal::from(10_000),
        },
    );
    // GIVEN two orders while the payments table is missing, and a malformed message
    let orders = [order("ord-dlq-1"), order("ord-dlq-2")];
    for body in orders
        .iter()
        .map(|o| o.encode().expect("valid"))
        .chain(["{\"eventId\": oops".to_owned()])
    {
        aws.sqs
            .send_message()
            .queue_url(&queue.url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }
    let (event, messages) = aws.sqs_event(&queue, 3).await;
    let outcome = consumer.process(&event, &Invocation::default()).await;
    aws.acknowledge(&queue, &messages, &outcome.response())
        .await;
    assert!(
        outcome
            .records
            .iter()
            .all(|(_, o)| matches!(o, RecordOutcome::DeadLettered(_))),
        "{outcome:?}"
    );

    // WHEN the operator looks: found from the stack's prefix, counted by kind, nothing taken
    let dlq = Dlq::new(aws.sqs.clone());
    // The emulator's queues are named `of-<prefix>-…`, as a stack's are `<stack>-…`.
    let stack = format!("of-{prefix}");
    let found = dlq.discover(&stack).await.expect("discover");
    assert_eq!(found.len(), 1, "{found:?}");
    let target = &found[0];
    assert_eq!(target.queue.url, dead.url);
    assert_eq!(target.sources.len(), 1);
    assert_eq!(target.sources[0].url, queue.url);
    let peeked = dlq.peek(&target.queue, 100).await.expect("peek");
    let mut kinds: Vec<&str> = peeked.iter().map(|m| m.kind_label()).collect();
    kinds.sort();
    assert_eq!(kinds, ["AwsPermanent", "AwsPermanent", "MalformedJson"]);
    assert!(
        peeked
            .iter()
            .all(|m| m.source_queue.as_deref() == Some(queue.arn.as_str()))
    );
    assert_eq!(
        dlq.depth(&target.queue).await.expect("depth").0,
        3,
        "a look takes nothing"
    );
    let (code, out, err) =
        run_orderflow(&aws.endpoint, &["dlq", "list", "--stack", &stack, "--json"]);
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(listed[0]["depth"], 3, "{listed}");
    assert_eq!(listed[0]["byErrorKind"]["AwsPermanent"], 2, "{listed}");
    assert_eq!(listed[0]["byErrorKind"]["MalformedJson"], 1, "{listed}");
    let first_id = orders[0].event_id.to_string();
    let (code, out, err) = run_orderflow(
        &aws.endpoint,
        &["dlq", "show", &first_id, "--queue", &dead.url],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&payments) && out.contains("decoded event"),
        "{out}"
    );

    // AND a dry run moves nothing
    let (code, out, err) = run_orderflow(
        &aws.endpoint,
        &[
            "dlq",
            "replay",
            "--queue",
            &dead.url,
            "--error-kind",
            "AwsPermanent",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("would move 2, skipped 1"), "{out}");
    assert_eq!(dlq.depth(&target.queue).await.expect("depth").0, 3);

    // WHEN the cause is fixed (the table created) and the AwsPermanent ones replayed
    aws.dynamodb
        .create_table()
        .table_name(&payments)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("orderId")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("orderId")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .customize()
        .config_override(orderflow_tests::dynamodb_setup())
        .send()
        .await
        .expect("CreateTable");
    let (code, out, err) = run_orderflow(
        &aws.endpoint,
        &[
            "dlq",
            "replay",
            "--queue",
            &dead.url,
            "--error-kind",
            "AwsPermanent",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("moved 2, skipped 1 (not selected), failed 0"),
        "{out}"
    );

    // THEN both orders are back on the source queue, without the failure annotations, and
    // each is paid exactly once, even when a copy of one comes again (a replay that died
    // between its send and its delete leaves one)
    let (event, messages) = aws.sqs_event(&queue, 2).await;
    assert!(
        event
            .records
            .iter()
            .all(|r| !r.message_attributes.contains_key("errorKind")),
        "the failure attributes stay behind"
    );
    let outcome = consumer.process(&event, &Invocation::default()).await;
    aws.acknowledge(&queue, &messages, &outcome.response())
        .await;
    assert!(
        outcome
            .records
            .iter()
            .all(|(_, o)| matches!(o, RecordOutcome::Handled)),
        "{outcome:?}"
    );
    aws.sqs
        .send_message()
        .queue_url(&queue.url)
        .message_body(orders[0].encode().expect("valid"))
        .send()
        .await
        .expect("SendMessage");
    let (event, messages) = aws.sqs_event(&queue, 1).await;
    let again = consumer.process(&event, &Invocation::default()).await;
    aws.acknowledge(&queue, &messages, &again.response()).await;
    assert!(
        matches!(again.records[0].1, RecordOutcome::Duplicate),
        "{again:?}"
    );
    let rows = aws
        .dynamodb
        .scan()
        .table_name(&payments)
        .send()
        .await
        .expect("Scan")
        .count();
    assert_eq!(rows, 2, "one payment per order");
    // AND only the malformed message is left; replaying it again moves nothing new
    let left = dlq.peek(&target.queue, 100).await.expect("peek");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].error_kind.as_deref(), Some("MalformedJson"));
    let report = dlq
        .replay(
            target,
            &Selection::ErrorKind("AwsPermanent".into()),
            &ReplayOptions::default(),
            |_| {},
        )
        .await
        .expect("replay");
    assert!(report.moved.is_empty() && report.skipped == 1, "{report:?}");

    // WHEN it is purged: only with --yes (no one can type at CI), saying what it removed
    let (code, out, err) = run_orderflow(
        &aws.endpoint,
        &["dlq", "purge", "--queue", &dead.url, "--yes"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("MalformedJson") && out.contains("removed 1 from"),
        "{out}"
    );
    assert_eq!(dlq.depth(&target.queue).await.expect("depth").0, 0);
}

#[tokio::test]
async fn the_tool_says_what_is_wrong_and_exits_non_zero() {
    let aws = emulator().await;
    let (queue, dead) = aws.queue_with_dlq(&unique_name("dlq-wrong"), 5, 30).await;
    let cases: [(&[&str], &str); 4] = [
        (
            &["dlq", "list", "--queue", &queue.url],
            "is not a dead-letter queue",
        ),
        (
            &["dlq", "list", "--queue", "no-such-queue-anywhere"],
            "no queue `no-such-queue-anywhere`",
        ),
        (
            &["dlq", "replay", "--queue", &dead.url],
            "say which messages",
        ),
        (
            &[
                "dlq",
                "show",
                "11111111-2222-3333-4444-555555555555",
                "--queue",
                &dead.url,
            ],
            "no message of event",
        ),
    ];
    for (args, says) in cases {
        let (code, _, err) = run_orderflow(&aws.endpoint, args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // The endpoint down: a clear error, not a hang.
    let (code, _, err) =
        run_orderflow("http://127.0.0.1:9", &["dlq", "list", "--queue", &dead.url]);
    assert_ne!(code, 0);
    assert!(err.contains("SQS"), "{err}");
}

/// `count` messages of events of their own in `dlq`, as the consumer of `source` set them aside.
async fn dead_letters(
    aws: &orderflow_tests::Emulator,
    dlq: &orderflow_tests::Queue,
    source: &orderflow_tests::Queue,
    count: usize,
) {
    for i in 0..count {
        let text = |value: &str| {
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("attribute")
        };
        aws.sqs
            .send_message()
            .queue_url(&dlq.url)
            .message_body(
                order(&format!("ord-set-aside-{i}"))
                    .encode()
                    .expect("valid"),
            )
            .message_attributes("errorKind", text("HandlerPermanent"))
            .message_attributes("errorMessage", text("the card was refused"))
            .message_attributes("sourceQueue", text(&source.arn))
            .send()
            .await
            .expect("SendMessage");
    }
}

async fn visible_and_in_flight(
    aws: &orderflow_tests::Emulator,
    queue: &orderflow_tests::Queue,
) -> (u64, u64) {
    let dlq = Dlq::new(aws.sqs.clone());
    let queue = dlq.resolve(&queue.url).await.expect("queue");
    dlq.depth(&queue).await.expect("depth")
}

/// The event ids of every message `queue` gives now.
async fn event_ids_in(
    aws: &orderflow_tests::Emulator,
    queue: &orderflow_tests::Queue,
) -> Vec<String> {
    let dlq = Dlq::new(aws.sqs.clone());
    let queue = dlq.resolve(&queue.url).await.expect("queue");
    let mut ids: Vec<String> = dlq
        .peek(&queue, 100)
        .await
        .expect("peek")
        .into_iter()
        .filter_map(|m| m.event.map(|e| e.event_id))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_replay_killed_mid_way_loses_no_message() {
    let aws = emulator().await;
    let (queue, dead) = aws.queue_with_dlq(&unique_name("dlq-killed"), 5, 30).await;
    dead_letters(&aws, &dead, &queue, 6).await;
    let all = event_ids_in(&aws, &dead).await;
    assert_eq!(all.len(), 6);
    // One by one at 2 a second (an error-kind selection never uses a move task), each message
    // held 2 s; killed as soon as the first has arrived at the source queue.
    let mut child = orderflow_command(&aws.endpoint)
        .args([
            "dlq",
            "replay",
            "--queue",
            &dead.url,
            "--error-kind",
            "HandlerPermanent",
            "--rate",
            "2",
            "--hold-seconds",
            "2",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the orderflow binary is built");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while visible_and_in_flight(&aws, &queue).await.0 == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let (moved, _) = visible_and_in_flight(&aws, &queue).await;
    assert!((1..6).contains(&moved), "killed mid-way: {moved} moved");
    // THEN, once the held ones are visible again, every event is in one of the two queues (one
    // caught between send and delete would be in both)
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut found = event_ids_in(&aws, &queue).await;
    found.extend(event_ids_in(&aws, &dead).await);
    found.sort();
    found.dedup();
    assert_eq!(found, all, "every message is somewhere");
}

#[tokio::test]
async fn replaying_everything_moves_every_message_back() {
    let aws = emulator().await;
    let (queue, dead) = aws.queue_with_dlq(&unique_name("dlq-all"), 5, 30).await;
    dead_letters(&aws, &dead, &queue, 4).await;
    // SQS's message move task where the endpoint has one (AWS, LocalStack), else one by one.
    let (code, out, err) = run_orderflow(
        &aws.endpoint,
        &["dlq", "replay", "--queue", &dead.url, "--all"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("moved 4,")
            || l.starts_with("moved 4 by")
            || l.starts_with("moved 4 of 4 by")),
        "{out}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while visible_and_in_flight(&aws, &queue).await.0 < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(visible_and_in_flight(&aws, &queue).await.0, 4);
    assert_eq!(visible_and_in_flight(&aws, &dead).await, (0, 0));
}
