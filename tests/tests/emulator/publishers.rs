//! Three ways to publish OrderPlaced — the library, our CLI, and a plain `aws sns publish` —
//! deliver the same envelope with the same attributes. Bad input and an unreachable endpoint
//! give clear errors and publish nothing.

use std::process::{Command, Output, Stdio};

use orderflow::Publisher;
use orderflow::event::examples;
use orderflow_tests::{
    ABSENCE_GRACE, DELIVERY_DEADLINE, aws_cli, emulator, expected_attributes, orderflow_cli,
};
use serde_json::json;

fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[tokio::test]
async fn library_cli_and_aws_cli_deliver_identical_envelopes() {
    let aws = emulator().await;
    let topic = aws.topic("publishers", false).await;
    let queue = aws.queue("publishers", false).await;
    aws.subscribe(&topic, &queue, false, None).await;
    let event = examples::order_placed();
    let document = event.encode().unwrap();
    let dir = std::env::temp_dir().join(orderflow_tests::unique_name("publishers"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("order-placed.json");
    std::fs::write(&file, &document).unwrap();

    // 1. the library
    Publisher::new(aws.sns.clone(), &topic)
        .publish(&event)
        .await
        .unwrap();

    // 2. our CLI
    let out = Command::new(orderflow_cli())
        .args(["publish", "--topic-arn", &topic, "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "orderflow publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let printed: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(printed.len(), 2, "prints `<eventId> <messageId>`: {stdout}");
    assert_eq!(printed[0], event.event_id.to_string());

    // 3. a plain `aws sns publish`, as another team's system would
    let attributes = json!({
        "eventType": {"DataType": "String", "StringValue": "OrderPlaced"},
        "eventVersion": {"DataType": "Number", "StringValue": "2"},
        "correlationId": {"DataType": "String", "StringValue": event.correlation_id},
    });
    let out = Command::new(aws_cli())
        .args(["sns", "publish", "--topic-arn", &topic, "--message"])
        .arg(format!("file://{}", file.display()))
        .args([
            "--message-attributes",
            &attributes.to_string(),
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws sns publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let received = aws.receive(&queue, 3, DELIVERY_DEADLINE).await;
    assert_eq!(received.len(), 3);
    for message in &received {
        assert_eq!(
            message.message, document,
            "every publisher delivers the same bytes"
        );
        assert_eq!(message.event(), event);
        assert_eq!(message.attributes, expected_attributes(&event));
    }
}

#[tokio::test]
async fn cli_refuses_invalid_input_and_publishes_nothing() {
    let aws = emulator().await;
    let topic = aws.topic("cli-invalid", false).await;
    let queue = aws.queue("cli-invalid", false).await;
    aws.subscribe(&topic, &queue, true, None).await;
    let valid = serde_json::to_value(examples::order_placed()).unwrap();
    let mut bad_quantity = serde_json::to_value(examples::order_placed()).unwrap();
    bad_quantity["data"]["items"][0]["quantity"] = json!(0);
    let mut unknown_type = valid.clone();
    unknown_type["eventType"] = json!("OrderShipped");

    let cases = [
        ("{\"eventId\": ", "malformed JSON at line 1"),
        ("[]", "the array holds no events"),
        (
            &bad_quantity.to_string(),
            "invalid field `data.items[0].quantity`: must be at least 1",
        ),
        (
            &json!([valid, unknown_type]).to_string(),
            "event [1]: unknown eventType `OrderShipped`",
        ),
    ];
    for (input, expected) in cases {
        let mut command = Command::new(orderflow_cli());
        command.args(["publish", "--topic-arn", &topic]);
        let out = run_with_stdin(command, input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "input {input:.40}: {stderr}");
        assert!(
            stderr.contains(expected),
            "stderr lacks `{expected}`: {stderr}"
        );
        assert!(stderr.contains("nothing was published"), "{stderr}");
    }
    let delivered = aws.receive_for(&queue, ABSENCE_GRACE).await;
    assert!(
        delivered.is_empty(),
        "an invalid input published {} message(s)",
        delivered.len()
    );
}

#[tokio::test]
async fn cli_reports_an_unreachable_endpoint_and_exits_non_zero() {
    // Port 9 (discard) on loopback: nothing listens there.
    let document = examples::order_placed().encode().unwrap();
    let mut command = Command::new(orderflow_cli());
    command
        .args([
            "publish",
            "--topic-arn",
            "arn:aws:sns:us-east-1:000000000000:nowhere",
        ])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_MAX_ATTEMPTS", "1");
    let out = run_with_stdin(command, &document);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed after 4 attempt(s)") && stderr.contains("Connection refused"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 1 event(s) were not published"),
        "{stderr}"
    );
}

#[tokio::test]
async fn cli_prints_a_valid_example_and_the_schema() {
    let out = Command::new(orderflow_cli())
        .args(["publish", "--example", "order-placed"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let example = orderflow::Event::decode(&out.stdout).expect("the example is a valid event");
    assert_eq!(example.event_type(), orderflow::EventType::OrderPlaced);

    let out = Command::new(orderflow_cli())
        .args(["schema", "OrderPlaced", "--version", "1"])
        .output()
        .unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["properties"]["eventVersion"]["const"], 1);
}
