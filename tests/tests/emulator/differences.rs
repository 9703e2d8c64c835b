//! Where moto, LocalStack (with AWS's DynamoDB Local) and AWS differ in behaviour our code
//! relies on, and our code follows AWS's documented behaviour. Every test here runs on both
//! emulators (`make test`); README's table "moto, LocalStack and AWS" points at them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::AttributeValue;
use orderflow_tests::emulator;
use orderflow_tests::streams::StreamReader;

async fn put(aws: &orderflow_tests::Emulator, table: &str, key: &str) {
    aws.dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(key.into()))
        .send()
        .await
        .expect("PutItem");
}

/// DynamoDB Local numbers stream records across all tables and answers
/// `TrimmedDataAccessException` to an iterator taken on a still-empty shard once other tables
/// have written; AWS documents that error as "records trimmed, carry on from `TRIM_HORIZON`",
/// which is what our stream readers (this one and `orderflow-local`'s) do.
#[tokio::test]
async fn a_stream_read_from_its_start_sees_every_record_though_other_tables_wrote_first() {
    let aws = emulator().await;
    let other = aws.create_table("diff-other", "pk", None, true).await;
    let watched = aws.create_table("diff-watched", "pk", None, true).await;
    for table in [&other, &watched] {
        aws.dynamodb
            .wait_until_table_exists()
            .table_name(table)
            .wait(Duration::from_secs(60))
            .await
            .expect("table becomes active");
    }
    // GIVEN a reader at the start of an empty stream
    let mut reader = StreamReader::open(&aws.config, &aws.dynamodb, &watched).await;

    // WHEN another table writes first, then the watched one
    put(&aws, &other, "a").await;
    put(&aws, &other, "b").await;
    put(&aws, &watched, "x").await;
    put(&aws, &watched, "y").await;

    // THEN the reader sees both records of the watched table, and only those
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 2 && Instant::now() < deadline {
        for record in reader.next_batch().await.records {
            let key = record.change.keys.get("pk").cloned();
            seen.insert(format!("{key:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen.len(), 2, "records read: {seen:?}");
    assert!(
        seen.iter()
            .all(|k| k.contains("\"x\"") || k.contains("\"y\"")),
        "{seen:?}"
    );
}
