//! End to end, as it ships: `infra/template.yaml` provisioned into the emulator and the real
//! function binaries run by the local Lambda service, reached only as users and other systems
//! reach them (the HTTP API, the topic) and observed through the tables and queues.

// Test code: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use orderflow::Event;
use orderflow::event::{EventPayload, examples};
use orderflow_tests::stack::{Deployed, repo};
use orderflow_tests::{DELIVERY_DEADLINE, eventually, http};
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(180);

fn order(customer: &str, sku: &str, quantity: u32) -> Value {
    json!({"customerId": customer, "customerEmail": format!("{customer}@example.com"), "currency": "EUR",
           "items": [{"sku": sku, "quantity": quantity, "unitPrice": "10.00"}]})
}

async fn place(deployed: &Deployed, body: &Value) -> String {
    let answer = http::post_json(&format!("{}/orders", deployed.url()), body, &[]).await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()["orderId"].as_str().unwrap().to_owned()
}

/// An `OrderPlaced` another system publishes: one unit of `sku`, its own event id.
fn external_order(order_id: &str, sku: &str) -> Event {
    let mut external: Event = examples::order_placed();
    external.event_id = uuid::Uuid::new_v4();
    external.aggregate_id = order_id.into();
    if let EventPayload::OrderPlaced(o) = &mut external.payload {
        o.order_id = order_id.into();
        o.items.truncate(1);
        o.items[0].sku = sku.into();
        o.items[0].quantity = 1;
        o.total = o.items[0].unit_price;
    }
    external
}

async fn status(deployed: &Deployed, id: &str) -> Value {
    http::get(&format!("{}/orders/{id}", deployed.url()))
        .await
        .json()["status"]
        .clone()
}

async fn assert_dlqs_empty(deployed: &Deployed) {
    for (service, queue) in deployed.dead_letter_queues() {
        let messages = deployed.peek(&queue).await;
        assert!(messages.is_empty(), "{service} DLQ: {messages:?}");
    }
}

#[tokio::test]
async fn orders_end_confirmed_declined_and_out_of_stock_across_every_table() {
    let deployed = Deployed::start("e2e-flow", &[], false).await;
    deployed.seed_stock("SKU-A", 5).await;
    deployed.seed_stock("SKU-RARE", 1).await;
    let confirmed = place(&deployed, &order("cust-1", "SKU-A", 2)).await;
    let declined = place(&deployed, &order("decline-2", "SKU-A", 1)).await;
    let short = place(&deployed, &order("cust-3", "SKU-RARE", 4)).await;
    deployed.settle(SETTLE).await;

    assert_eq!(status(&deployed, &confirmed).await, "CONFIRMED");
    assert_eq!(status(&deployed, &declined).await, "CANCELLED");
    assert_eq!(status(&deployed, &short).await, "CANCELLED");
    for (id, expected) in [
        (&confirmed, "CAPTURED"),
        (&declined, "DECLINED"),
        (&short, "REFUNDED"),
    ] {
        let row = deployed
            .item("PaymentsTableName", &[("orderId", id)])
            .await
            .unwrap();
        assert_eq!(row["status"], expected, "{id}");
    }
    assert_eq!(
        deployed.stock("SKU-A").await,
        Some(3),
        "the declined order's unit came back"
    );
    assert_eq!(deployed.stock("SKU-RARE").await, Some(1));
    let emails = deployed
        .scan("NotificationsTableName")
        .await
        .into_iter()
        .filter(|n| n.contains_key("subject"))
        .count();
    assert_eq!(emails, 6, "placed x3, confirmed x1, cancelled x2");
    let counters = deployed.analytics().await;
    let day = counters
        .iter()
        .find(|(k, _)| k.starts_with("DAY#"))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(
        (
            day["ordersPlaced"],
            day["ordersConfirmed"],
            day["ordersCancelled"]
        ),
        (3.into(), 1.into(), 2.into())
    );
    let outbox: Vec<_> = deployed
        .scan("OrdersTableName")
        .await
        .into_iter()
        .filter(|r| r["sk"].as_str().is_some_and(|s| s.starts_with("OUTBOX#")))
        .collect();
    assert_eq!(outbox.len(), 6);
    assert!(outbox.iter().all(|r| r["status"] == "SENT"), "{outbox:?}");
    // Fan-out, filtered: every OrderPlaced reached the five consumers that take it; the
    // orders queue also took the four saga reports, and nothing else.
    let stats = deployed.runner.stats();
    assert_eq!(
        stats["PaymentFunction"].records,
        3 + 2,
        "3 OrderPlaced + 2 OrderCancelled"
    );
    assert_eq!(stats["InventoryFunction"].records, 3 + 2);
    assert_eq!(stats["NotificationFunction"].records, 3 + 1 + 2);
    assert_eq!(stats["AnalyticsFunction"].records, 3 + 1 + 2);
    assert_dlqs_empty(&deployed).await;
    // The functions logged every record (JSON, one `record done` line each) and no customer's
    // email: payloads stay out of the logs.
    let logs = deployed.function_logs();
    let done = logs.matches(r#""message":"record done""#).count();
    assert!(done >= 3 * 5 + 4, "{done} records logged\n{logs}");
    for customer in ["cust-1", "decline-2", "cust-3"] {
        assert!(
            !logs.contains(&format!("{customer}@example.com")),
            "{customer}'s email is in the logs"
        );
    }
    // Each function wrote EMF documents (the template sets the namespace) counting what the
    // runner delivered to it (the orders function also served the HTTP requests, which are not
    // SQS records); the log files may trail the pipes by a moment.
    // Both are read afresh until they agree: a late stream record (a status update the relay
    // skips) may arrive after the snapshot above.
    let counted = |delivered: &std::collections::BTreeMap<String, orderflow_local::Stats>,
                   metrics: &std::collections::BTreeMap<
        String,
        orderflow_local::metrics::FunctionMetrics,
    >| {
        delivered.iter().all(|(function, delivered)| {
            metrics.get(function).is_some_and(|m| {
                // The orders function's HTTP requests are invocations too, without a document.
                let sqs_only = function != "OrdersFunction";
                // Each instance start measured its init, as Lambda's REPORT line does.
                delivered.init_durations.len() == delivered.cold_starts
                    && delivered.max_rss_kib > 0
                    && (!sqs_only
                        || m.received == delivered.records as u64
                            && (1..=delivered.cold_starts as u64).contains(&m.cold_starts))
                    && m.received > 0
                    && m.succeeded + m.failed == m.received
                    && m.dead_lettered_total() == 0
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let read = || {
        (
            deployed.runner.stats(),
            orderflow_local::metrics::collect(deployed.runner.log.dir()),
        )
    };
    let (mut delivered, mut metrics) = read();
    while !counted(&delivered, &metrics) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        (delivered, metrics) = read();
    }
    assert!(
        counted(&delivered, &metrics),
        "the metrics do not count what was delivered: {delivered:?}\n{}",
        orderflow_local::metrics::render(&metrics)
    );
    deployed.stop().await;
}

#[tokio::test]
async fn a_poison_message_reaches_every_consumers_dlq_at_once_and_the_rest_goes_on() {
    let deployed = Deployed::start("e2e-poison", &[], false).await;
    deployed.seed_stock("SKU-A", 5).await;
    let topic = deployed.output("EventsTopicArn");
    let attributes = |version: &str| {
        [
            ("eventType", "String", "OrderPlaced"),
            ("eventVersion", "Number", version),
        ]
        .map(|(name, kind, value)| {
            (
                name,
                aws_sdk_sns::types::MessageAttributeValue::builder()
                    .data_type(kind)
                    .string_value(value)
                    .build()
                    .unwrap(),
            )
        })
    };
    // A malformed one and one of a version no reader knows, next to a good one.
    let mut future = serde_json::to_value(examples::order_placed()).unwrap();
    future["eventVersion"] = json!(9);
    for (body, version) in [
        ("{\"eventId\": oops".to_owned(), "2"),
        (future.to_string(), "9"),
    ] {
        let mut request = deployed.aws.sns.publish().topic_arn(&topic).message(body);
        for (name, value) in attributes(version) {
            request = request.message_attributes(name, value);
        }
        request.send().await.unwrap();
    }
    let good = place(&deployed, &order("cust-1", "SKU-A", 1)).await;
    deployed.settle(SETTLE).await;
    assert_eq!(status(&deployed, &good).await, "CONFIRMED");
    for (service, queue) in deployed.dead_letter_queues() {
        let messages = deployed.peek(&queue).await;
        if service == "OutboxRelayFailure" {
            assert!(messages.is_empty());
            continue;
        }
        let mut kinds: Vec<&str> = messages.iter().map(|m| m.error_kind.as_str()).collect();
        kinds.sort();
        assert_eq!(kinds, ["MalformedJson", "UnsupportedVersion"], "{service}");
        assert!(
            messages.iter().all(|m| m.receive_count == 1),
            "{service}: on the first attempt"
        );
        assert!(messages.iter().all(|m| !m.error_message.is_empty()));
    }
    // The metrics count the same dead letters, by kind.
    let metrics = orderflow_local::metrics::collect(deployed.runner.log.dir());
    for function in [
        "OrdersFunction",
        "PaymentFunction",
        "InventoryFunction",
        "NotificationFunction",
        "AnalyticsFunction",
    ] {
        let by_kind = metrics
            .get(function)
            .map(|m| m.dead_lettered.clone())
            .unwrap_or_default();
        assert_eq!(
            by_kind,
            [
                ("MalformedJson".to_owned(), 1),
                ("UnsupportedVersion".to_owned(), 1)
            ]
            .into(),
            "{function}'s RecordsDeadLettered by ErrorKind"
        );
    }
    deployed.stop().await;
}

#[tokio::test]
async fn a_stopped_consumer_catches_up_and_holds_nobody_up_meanwhile() {
    let deployed = Deployed::start("e2e-stopped", &[], false).await;
    deployed.seed_stock("SKU-A", 10).await;
    deployed.runner.stop_function("payment").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(place(&deployed, &order(&format!("cust-{i}"), "SKU-A", 1)).await);
    }
    // Everyone else goes on: stock is reserved, the customers are told their order arrived.
    let until = Instant::now() + Duration::from_secs(60);
    while deployed.stock("SKU-A").await != Some(7) {
        assert!(Instant::now() < until, "inventory was held up");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let queue = deployed.output("PaymentQueueUrl");
    assert_eq!(
        deployed.depth(&queue).await,
        3,
        "the orders wait in the payment queue"
    );
    for id in &ids {
        assert_eq!(status(&deployed, id).await, "PLACED");
    }
    deployed.runner.start_function("payment");
    deployed.settle(SETTLE).await;
    for id in &ids {
        assert_eq!(status(&deployed, id).await, "CONFIRMED");
    }
    // Each order was received once: a batch that came in while payment was stopped waited for
    // it, instead of going back and forth between pollers, each turn a receive towards the
    // redrive policy's maxReceiveCount.
    let usage = deployed
        .runner
        .proxy()
        .expect("the emulator is proxied")
        .tally()
        .snapshot();
    let caller = orderflow_local::event_source_caller("PaymentFunction");
    let receives = counted(&usage, &caller, orderflow_local::proxy::Service::Sqs);
    assert_eq!(
        receives
            .get("ReceiveMessage")
            .map_or(0, |usage| usage.messages),
        3,
        "{receives:?}"
    );
    assert!(
        !receives.contains_key("ChangeMessageVisibility"),
        "{receives:?}"
    );
    assert_dlqs_empty(&deployed).await;
    deployed.stop().await;
}

#[tokio::test]
async fn a_function_killed_mid_batch_is_restarted_and_every_effect_happens_once() {
    let deployed = Deployed::start("e2e-kill", &[], false).await;
    deployed.seed_stock("SKU-A", 20).await;
    deployed.runner.stop_function("payment").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(place(&deployed, &order(&format!("cust-{i}"), "SKU-A", 1)).await);
    }
    let queue = deployed.output("PaymentQueueUrl");
    let until = Instant::now() + Duration::from_secs(60);
    while deployed.depth(&queue).await < 6 {
        assert!(Instant::now() < until);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // WHEN payment starts on the batch and is killed in the middle of it
    deployed.runner.start_function("payment");
    let payment = deployed.runner.function("payment").unwrap().clone();
    let until = Instant::now() + Duration::from_secs(30);
    while payment.in_flight() == 0 {
        assert!(Instant::now() < until, "payment never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = deployed.runner.kill_function("payment").await;
    assert!(killed > 0);
    // THEN the batch comes back after its visibility timeout, a new instance starts cold, and
    // every order is charged exactly once
    deployed.settle(Duration::from_secs(300)).await;
    // The last confirmations travel through SNS, asynchronously: look until they are in.
    eventually(DELIVERY_DEADLINE, || async {
        for id in &ids {
            let status = status(&deployed, id).await;
            if status != "CONFIRMED" {
                return Err(format!("{id} is {status}"));
            }
            let row = deployed.item("PaymentsTableName", &[("orderId", id)]).await;
            let payment = row.as_ref().map(|row| &row["status"]);
            if payment != Some(&json!("CAPTURED")) {
                return Err(format!("{id}'s payment: {payment:?}"));
            }
        }
        let stock = deployed.stock("SKU-A").await;
        if stock != Some(14) {
            return Err(format!("SKU-A stock {stock:?}, not 14"));
        }
        let emails = deployed
            .scan("NotificationsTableName")
            .await
            .into_iter()
            .filter(|n| n.contains_key("subject"))
            .count();
        if emails != 12 {
            return Err(format!(
                "{emails} emails, not 12 (placed and confirmed, once each)"
            ));
        }
        Ok(())
    })
    .await;
    let stats = payment.stats();
    assert!(stats.cold_starts >= 2, "restarted: {stats:?}");
    assert!(stats.failed_invocations >= 1, "{stats:?}");
    assert_dlqs_empty(&deployed).await;
    deployed.stop().await;
}

#[tokio::test]
async fn the_same_event_twice_and_every_stream_record_twice_take_effect_once() {
    let deployed = Deployed::start("e2e-twice", &[], true).await;
    deployed.seed_stock("SKU-A", 10).await;
    let id = place(&deployed, &order("cust-1", "SKU-A", 2)).await;
    // Another system publishes its order twice (a retry on its side).
    let external = external_order("ext-twice", "SKU-A");
    let publisher =
        orderflow::Publisher::new(deployed.aws.sns.clone(), deployed.output("EventsTopicArn"));
    publisher.publish(&external).await.unwrap();
    publisher.publish(&external).await.unwrap();
    deployed.settle(SETTLE).await;
    assert_eq!(status(&deployed, &id).await, "CONFIRMED");
    assert_eq!(status(&deployed, "ext-twice").await, "CONFIRMED");
    assert_eq!(
        deployed.stock("SKU-A").await,
        Some(7),
        "2 + 1 units, once each"
    );
    let counters = deployed.analytics().await;
    let day = counters
        .iter()
        .find(|(k, _)| k.starts_with("DAY#"))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(
        (day["ordersPlaced"], day["ordersConfirmed"]),
        (2.into(), 2.into())
    );
    let emails = deployed
        .scan("NotificationsTableName")
        .await
        .into_iter()
        .filter(|n| n.contains_key("subject"))
        .count();
    assert_eq!(emails, 4);
    // The relay did publish every outbox event twice.
    let relay = deployed.runner.function("outbox-relay").unwrap().stats();
    assert!(
        relay.invocations >= 2 && relay.invocations % 2 == 0,
        "{relay:?}"
    );
    assert_dlqs_empty(&deployed).await;
    deployed.stop().await;
}

#[tokio::test]
async fn the_http_api_answers_as_api_gateway_would() {
    let deployed = Deployed::start("e2e-http", &[], false).await;
    let url = deployed.url();
    let created = http::post_json(
        &format!("{url}/orders"),
        &order("cust-1", "SKU-A", 1),
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.headers["content-type"], "application/json");
    let id = created.json()["orderId"].as_str().unwrap().to_owned();
    assert_eq!(created.headers["location"], format!("/orders/{id}"));
    assert!(created.headers.contains_key("apigw-requestid"));
    let again = http::post_json(
        &format!("{url}/orders"),
        &order("cust-1", "SKU-A", 1),
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_eq!(
        (again.status, again.json()["orderId"].clone()),
        (200, json!(id))
    );
    let view = http::get(&format!("{url}/orders/{id}")).await;
    assert_eq!(view.status, 200);
    assert_eq!(view.json()["orderId"], id.as_str());
    // A body sent as binary reaches the function base64-encoded and is decoded there.
    let binary = http::request(
        "POST",
        &format!("{url}/orders"),
        &[("content-type", "application/octet-stream")],
        Some(order("cust-2", "SKU-A", 1).to_string().as_bytes()),
    )
    .await;
    assert_eq!(
        binary.status,
        201,
        "{}",
        String::from_utf8_lossy(&binary.body)
    );
    let malformed = http::request(
        "POST",
        &format!("{url}/orders"),
        &[("content-type", "application/json")],
        Some(b"{\"customerId\": "),
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("EOF")
    );
    assert_eq!(
        http::get(&format!("{url}/orders/ord-missing")).await.status,
        404
    );
    let unrouted = http::get(&format!("{url}/nowhere")).await;
    assert_eq!(
        (unrouted.status, unrouted.json()),
        (404, json!({"message": "Not Found"}))
    );
    assert_eq!(
        http::request("DELETE", &format!("{url}/orders/{id}"), &[], None)
            .await
            .status,
        404,
        "no DELETE route"
    );
    deployed.stop().await;
}

/// The runner's own fixture (`tests/fixtures/sleepy.yaml`: functions that sleep, crash or
/// fail to start), deployed as `name`.
async fn sleepy_fixture(name: &str) -> Deployed {
    Deployed::start_template(&repo().join("tests/fixtures/sleepy.yaml"), name, &[], false).await
}

/// Sends `body` to the queue at `url`.
async fn send(deployed: &Deployed, url: &str, body: &str) {
    deployed
        .aws
        .sqs
        .send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_function_that_overruns_its_timeout_is_killed_and_its_batch_retried() {
    let deployed = sleepy_fixture("e2e-timeout").await;
    let queue = deployed.output("QueueUrl");
    for body in ["sleep", "crash"] {
        send(&deployed, &queue, body).await;
    }
    deployed.settle(Duration::from_secs(60)).await;
    let stats = deployed.runner.function("sleepy").unwrap().stats();
    // Each message: a first attempt that failed (timeout, crash), a second that succeeded.
    assert_eq!(stats.invocations, 4, "{stats:?}");
    assert_eq!(stats.failed_invocations, 2, "{stats:?}");
    assert!(
        stats.cold_starts >= 3,
        "a new instance after each failure: {stats:?}"
    );
    assert_eq!(deployed.depth(&queue).await, 0);
    let log = std::fs::read_to_string(deployed.runner.log.dir().join("invocations.log")).unwrap();
    assert!(log.contains("timed out after 2 s, killed"), "{log}");
    assert!(log.contains("crashed"), "{log}");
    deployed.stop().await;
}

#[tokio::test]
async fn an_init_error_is_reported_with_the_last_log_lines_and_retried_with_backoff() {
    let deployed = sleepy_fixture("e2e-init").await;
    let queue = deployed.output("MisconfiguredQueueUrl");
    send(&deployed, &queue, "{}").await;
    let function = deployed.runner.function("payment").unwrap().clone();
    let until = Instant::now() + Duration::from_secs(60);
    while function.stats().invocations < 2 {
        assert!(Instant::now() < until, "{:?}", function.stats());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = function.stats();
    assert_eq!(stats.failed_invocations, stats.invocations, "{stats:?}");
    let log = std::fs::read_to_string(deployed.runner.log.dir().join("invocations.log")).unwrap();
    assert!(log.contains("init failed"), "{log}");
    assert!(
        log.contains("IDEMPOTENCY_TABLE must be set"),
        "the function's own words: {log}"
    );
    assert!(
        deployed.depth(&queue).await >= 1,
        "the message waits, not lost"
    );
    deployed.stop().await;
}

#[tokio::test]
async fn orderflow_local_up_stops_every_process_it_started_on_ctrl_c() {
    let aws = orderflow_tests::emulator().await;
    let runner = orderflow_tests::stack::bin_dir().join("orderflow-local");
    let mut child = tokio::process::Command::new(&runner)
        .current_dir(repo())
        .args([
            "up",
            "--port",
            "0",
            "--stack-name",
            &orderflow_tests::unique_name("e2e-up"),
        ])
        .env("AWS_ENDPOINT_URL", &aws.endpoint)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        if let Some(rest) = line.trim_start().strip_prefix("HTTP API") {
            url = Some(rest.trim().to_owned());
        }
        if line.contains("Ctrl-C stops") {
            break;
        }
    }
    let url = url.expect("the HTTP API's URL");
    // Start some function instances.
    let answer = http::post_json(&format!("{url}/orders"), &order("cust-1", "SKU-A", 1), &[]).await;
    assert_eq!(answer.status, 201);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = child.id().unwrap();
    let children = descendants(pid);
    assert!(
        !children.is_empty(),
        "function processes run under the runner"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left: Vec<u32> = children
        .into_iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// Every process below `pid` (from /proc).
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

#[tokio::test]
async fn the_fifo_variant_of_the_template_runs_the_same_flow() {
    let deployed = Deployed::start("e2e-fifo", &[("EventOrdering", "Fifo")], false).await;
    let topic = deployed.output("EventsTopicArn");
    assert!(topic.ends_with(".fifo"), "{topic}");
    assert!(deployed.output("PaymentQueueUrl").ends_with(".fifo"));
    deployed.seed_stock("SKU-A", 5).await;
    let confirmed = place(&deployed, &order("cust-1", "SKU-A", 1)).await;
    let declined = place(&deployed, &order("decline-2", "SKU-A", 1)).await;
    deployed.settle(SETTLE).await;
    assert_eq!(status(&deployed, &confirmed).await, "CONFIRMED");
    assert_eq!(status(&deployed, &declined).await, "CANCELLED");
    assert_eq!(deployed.stock("SKU-A").await, Some(4));
    assert_dlqs_empty(&deployed).await;
    deployed.stop().await;
}

/// Requests of `caller` to `service` the runner's proxy counted, by operation.
fn counted(
    usage: &std::collections::BTreeMap<orderflow_local::proxy::Key, orderflow_local::proxy::Usage>,
    caller: &str,
    service: orderflow_local::proxy::Service,
) -> std::collections::BTreeMap<String, orderflow_local::proxy::Usage> {
    usage
        .iter()
        .filter(|(k, _)| k.caller == caller && k.service == service)
        .map(|(k, u)| (k.operation.clone(), u.clone()))
        .collect()
}

#[tokio::test]
async fn every_request_of_a_function_and_its_event_source_is_counted_by_the_runner() {
    use orderflow_local::proxy::Service;
    let deployed = Deployed::start("e2e-count", &[], false).await;
    deployed.seed_stock("SKU-A", 10).await;
    let proxy = deployed
        .runner
        .proxy()
        .expect("the emulator is proxied")
        .clone();
    // GIVEN nothing counted yet (provisioning went direct)
    proxy.tally().reset();
    // WHEN another system publishes one order
    let placed = external_order("ext-counted", "SKU-A");
    orderflow::Publisher::new(deployed.aws.sns.clone(), deployed.output("EventsTopicArn"))
        .publish(&placed)
        .await
        .unwrap();
    deployed.settle(SETTLE).await;
    assert_eq!(status(&deployed, "ext-counted").await, "CONFIRMED");
    let usage = proxy.tally().snapshot();
    let requests = |ops: &std::collections::BTreeMap<String, orderflow_local::proxy::Usage>| {
        ops.values().map(|u| u.requests).sum::<u64>()
    };
    // THEN each function's own requests are what its idempotency mode costs (the same figures
    // tests/tests/emulator/requests.rs counts with the library alone)
    let payment = counted(&usage, "PaymentFunction", Service::DynamoDb);
    assert_eq!(
        requests(&payment),
        4,
        "payment: claim, two writes, completion: {payment:?}"
    );
    let inventory = counted(&usage, "InventoryFunction", Service::DynamoDb);
    assert_eq!(inventory["TransactWriteItems"].requests, 1, "{inventory:?}");
    assert_eq!(
        requests(&inventory),
        3,
        "inventory: two reads, one transaction"
    );
    let analytics = counted(&usage, "AnalyticsFunction", Service::DynamoDb);
    assert_eq!(
        (
            requests(&analytics),
            analytics["TransactWriteItems"].requests
        ),
        (2, 2),
        "analytics: one transaction each for OrderPlaced and OrderConfirmed: {analytics:?}"
    );
    for publisher in ["PaymentFunction", "InventoryFunction"] {
        let sns = counted(&usage, publisher, Service::Sns);
        assert_eq!(
            requests(&sns),
            1,
            "{publisher} publishes its result once: {sns:?}"
        );
    }
    let relay = counted(&usage, "OutboxRelayFunction", Service::Sns);
    assert_eq!(
        relay["PublishBatch"].entries, 1,
        "the relay publishes OrderConfirmed"
    );
    // AND each consumer's event source received the messages meant for it and deleted them
    for (function, messages) in [
        ("PaymentFunction", 1),
        ("InventoryFunction", 1),
        ("NotificationFunction", 2),
        ("AnalyticsFunction", 2),
        ("OrdersFunction", 3),
    ] {
        let sqs = counted(
            &usage,
            &orderflow_local::event_source_caller(function),
            Service::Sqs,
        );
        // A saga event that overtakes its order is received again (OrderNotYetKnown).
        assert!(
            sqs["ReceiveMessage"].messages >= messages,
            "{function}: {sqs:?}"
        );
        let deleted: u64 = sqs
            .iter()
            .filter(|(op, _)| op.starts_with("DeleteMessage"))
            .map(|(_, u)| u.entries)
            .sum();
        assert_eq!(
            deleted, messages,
            "{function} deletes what it handled: {sqs:?}"
        );
    }
    let stream = counted(
        &usage,
        &orderflow_local::event_source_caller("OutboxRelayFunction"),
        Service::DynamoDbStreams,
    );
    assert!(
        stream.get("GetRecords").is_some_and(|u| u.requests > 0),
        "{stream:?}"
    );
    deployed.stop().await;
}
