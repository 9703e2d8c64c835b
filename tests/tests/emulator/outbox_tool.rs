//! `orderflow outbox`: the rows still PENDING, listed and published again byte for byte with
//! their original event ids, then marked SENT.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use orderflow::event::examples;
use orderflow::outbox::row_item;
use orderflow_tests::{DELIVERY_DEADLINE, emulator, run_orderflow};
use serde_json::Value;

#[tokio::test]
async fn pending_rows_are_listed_and_published_again_unchanged_then_marked_sent() {
    let aws = emulator().await;
    let table = aws
        .create_table("outbox-tool", "pk", Some("sk"), false)
        .await;
    let topic = aws.topic("outbox-tool", false).await;
    let queue = aws.queue("outbox-tool", false).await;
    aws.subscribe(&topic, &queue, true, None).await;
    // GIVEN an event an hour old the relay set aside, one just written, and one already sent
    let mut old = examples::order_placed();
    old.event_id = uuid::Uuid::new_v4();
    old.occurred_at = chrono::Utc::now() - chrono::Duration::hours(1);
    let mut recent = examples::order_placed();
    recent.event_id = uuid::Uuid::new_v4();
    let mut sent = examples::order_placed();
    sent.event_id = uuid::Uuid::new_v4();
    for (event, status) in [(&old, "PENDING"), (&recent, "PENDING"), (&sent, "SENT")] {
        let mut item: HashMap<String, AttributeValue> =
            row_item(&format!("ORDER#{}", event.aggregate_id), event).expect("row");
        item.insert("status".into(), AttributeValue::S(status.into()));
        if event.event_id == old.event_id {
            item.insert("publishAttempts".into(), AttributeValue::N("5".into()));
            item.insert(
                "lastPublishError".into(),
                AttributeValue::S("SNS throttled".into()),
            );
        }
        aws.dynamodb
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .expect("PutItem");
    }

    // WHEN the operator lists them
    let (code, out, err) = run_orderflow(
        &aws.endpoint,
        &["outbox", "pending", "--table", &table, "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).expect("JSON");
    let ids: Vec<&str> = listed
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["eventId"].as_str())
        .collect();
    assert_eq!(
        ids,
        [old.event_id.to_string(), recent.event_id.to_string()],
        "oldest first, not the SENT one"
    );
    assert_eq!(listed[0]["attempts"], 5);
    assert_eq!(listed[0]["lastError"], "SNS throttled");

    // AND publishes the old one again
    let (code, out, err) = run_orderflow(
        &aws.endpoint,
        &[
            "outbox",
            "republish",
            "--table",
            &table,
            "--topic-arn",
            &topic,
            "--older-than",
            "30m",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("published 1, failed 0"), "{out}");

    // THEN it arrives byte for byte, with its original id, and the row is SENT
    let received = aws.receive(&queue, 1, DELIVERY_DEADLINE).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, old.encode().expect("valid"));
    let (_, out, _) = run_orderflow(&aws.endpoint, &["outbox", "pending", "--table", &table]);
    assert!(
        out.contains("1 pending") && out.contains(&recent.event_id.to_string()),
        "{out}"
    );
    assert!(!out.contains(&old.event_id.to_string()), "{out}");
}

#[tokio::test]
async fn the_outbox_tool_says_when_the_table_or_the_endpoint_is_wrong() {
    let aws = emulator().await;
    let (code, _, err) = run_orderflow(
        &aws.endpoint,
        &["outbox", "pending", "--table", "no-such-table-anywhere"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no-such-table-anywhere"), "{err}");
    // Republishing asks which rows: a row written a moment ago is the relay's to publish.
    let (code, _, err) = run_orderflow(
        &aws.endpoint,
        &[
            "outbox",
            "republish",
            "--table",
            "orders",
            "--topic-arn",
            "arn:aws:sns:us-east-1:123456789012:t",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("say which rows"), "{err}");
    let (code, _, err) = run_orderflow(
        "http://127.0.0.1:9",
        &["outbox", "pending", "--table", "orders"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("DynamoDB Scan"), "{err}");
}
