//! `make run`: the order system as it ships, on a local AWS emulator: `infra/template.yaml`
//! provisioned into it, and the real function binaries run by the local Lambda service
//! (`orderflow-local`) from the template's event sources and HTTP API. It places orders the
//! way users and other systems do, waits until nothing moves, prints what happened, and exits
//! non-zero if anything ended other than it should.

// A demo: a failed call ends it with the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use orderflow::event::{EventPayload, examples};
use orderflow_tests::http;
use orderflow_tests::stack::Deployed;
use serde_json::{Value, json};

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap());
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

struct Expectations(Vec<String>);

impl Expectations {
    fn check(&mut self, ok: bool, what: String) {
        if !ok {
            self.0.push(what);
        }
    }
}

fn percentile(durations: &[Duration], p: f64) -> Duration {
    if durations.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = durations.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let bar = spinner("provisioning infra/template.yaml and starting the functions");
    let deployed = Deployed::start("run", &[], false).await;
    bar.finish_and_clear();
    let created = deployed
        .runner
        .stack
        .log
        .iter()
        .filter(|(_, _, w)| {
            w.starts_with("created") || w.starts_with("subscribed") || w.starts_with("set")
        })
        .count();
    let skipped = deployed
        .runner
        .stack
        .log
        .iter()
        .filter(|(_, _, w)| w.starts_with("skipped"))
        .count();
    println!("orderflow on the emulator at {}", deployed.aws.endpoint);
    println!(
        "  {created} resources created, {skipped} skipped on purpose (IAM, alarms, log groups, saved queries, KMS), {} functions running their real binaries",
        deployed.runner.functions().len()
    );
    let url = deployed.url();
    let topic = deployed.output("EventsTopicArn");
    println!(
        "  HTTP API {url}\n  topic    {topic}\n  logs     {}\n",
        deployed.runner.log.dir().display()
    );
    for (sku, units) in [("SKU-MUG", 10), ("SKU-TEA", 10), ("SKU-RARE", 1)] {
        deployed.seed_stock(sku, units).await;
    }
    println!("stock      SKU-MUG 10, SKU-TEA 10, SKU-RARE 1\n");

    let mut expect = Expectations(Vec::new());
    let order = |customer: &str, email: &str, items: Value| json!({"customerId": customer, "customerEmail": email, "currency": "EUR", "items": items});
    let requests = [
        (
            "Ada orders 2 mugs and a tea",
            "order-ada",
            order(
                "cust-ada",
                "ada@example.com",
                json!([{"sku": "SKU-MUG", "quantity": 2, "unitPrice": "12.50"}, {"sku": "SKU-TEA", "quantity": 1, "unitPrice": "15.48"}]),
            ),
            "CONFIRMED",
        ),
        (
            "Bob's card is declined",
            "order-bob",
            order(
                "decline-bob",
                "bob@example.com",
                json!([{"sku": "SKU-MUG", "quantity": 1, "unitPrice": "12.50"}]),
            ),
            "CANCELLED",
        ),
        (
            "Cy wants 5 of a SKU with 1 left",
            "order-cy",
            order(
                "cust-cy",
                "cy@example.com",
                json!([{"sku": "SKU-RARE", "quantity": 5, "unitPrice": "99.00"}]),
            ),
            "CANCELLED",
        ),
    ];
    let mut placed: Vec<(String, &str)> = Vec::new();
    for (story, key, body, outcome) in &requests {
        let answer =
            http::post_json(&format!("{url}/orders"), body, &[("idempotency-key", key)]).await;
        let json = answer.json();
        println!(
            "POST /orders  {story:<36} -> {} {}",
            answer.status,
            json["orderId"].as_str().unwrap_or("")
        );
        expect.check(
            answer.status == 201,
            format!("{story}: POST answered {}", answer.status),
        );
        if let Some(id) = json["orderId"].as_str() {
            placed.push((id.to_owned(), outcome));
        }
    }
    // A client retries Ada's POST with the same Idempotency-Key: the same order, not a second.
    let retry = http::post_json(
        &format!("{url}/orders"),
        &requests[0].2,
        &[("idempotency-key", "order-ada")],
    )
    .await;
    println!(
        "POST /orders  {:<36} -> {} {}",
        "Ada's client retries the same POST",
        retry.status,
        retry.json()["orderId"].as_str().unwrap_or("")
    );
    expect.check(
        retry.status == 200
            && placed
                .first()
                .is_some_and(|(id, _)| retry.json()["orderId"] == id.as_str()),
        format!("a retried POST answered {} {}", retry.status, retry.json()),
    );
    let invalid = http::post_json(&format!("{url}/orders"), &json!({"customerId": "", "currency": "euro", "items": [{"sku": "SKU-MUG", "quantity": 0, "unitPrice": "1"}]}), &[]).await;
    println!(
        "POST /orders  {:<36} -> {} {}",
        "an invalid request",
        invalid.status,
        invalid.json()["errors"]
    );
    expect.check(
        invalid.status == 400,
        format!("an invalid request answered {}", invalid.status),
    );

    // Another system publishes an OrderPlaced straight to the topic.
    let mut external = examples::order_placed();
    external.source = "partner-shop".into();
    external.event_id = uuid::Uuid::new_v4();
    external.correlation_id = external.event_id.to_string();
    let external_id = format!("ext-{}", &external.event_id.simple().to_string()[..8]);
    external.aggregate_id = external_id.clone();
    if let EventPayload::OrderPlaced(order) = &mut external.payload {
        order.order_id = external_id.clone();
        order.items.truncate(1);
        order.items[0].sku = "SKU-TEA".into();
        order.total =
            order.items[0].unit_price * rust_decimal::Decimal::from(order.items[0].quantity);
    }
    orderflow::Publisher::new(deployed.aws.sns.clone(), &topic)
        .publish(&external)
        .await
        .expect("publish");
    println!(
        "SNS publish   {:<36} -> {external_id}",
        "a partner shop's OrderPlaced"
    );
    placed.push((external_id.clone(), "CONFIRMED"));
    // And a malformed message reaches the topic.
    deployed
        .aws
        .sns
        .publish()
        .topic_arn(&topic)
        .message("{\"eventId\": not json")
        .message_attributes(
            "eventType",
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value("OrderPlaced")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("publish");
    println!(
        "SNS publish   {:<36} -> every OrderPlaced consumer's DLQ\n",
        "a malformed message"
    );

    let bar = spinner("the services are working");
    let settled = deployed
        .runner
        .settle(Duration::from_secs(300), &|left| {
            bar.set_message(format!(
                "the services are working: {left} messages and invocations in flight"
            ))
        })
        .await;
    bar.finish_and_clear();
    expect.check(
        settled.is_ok(),
        format!("the flow did not settle: {settled:?}"),
    );

    println!("orders");
    for (id, wanted) in &placed {
        let view = http::get(&format!("{url}/orders/{id}")).await.json();
        let history: Vec<&str> = view["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["status"].as_str())
            .collect();
        let detail = view["cancelDetail"]
            .as_str()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let by = view["placedBy"]
            .as_str()
            .map(|b| format!(" [placed by {b}]"))
            .unwrap_or_default();
        println!(
            "  {id:<44} {:<10} {}{detail}{by}",
            view["status"].as_str().unwrap_or("?"),
            history.join(" -> ")
        );
        expect.check(
            view["status"] == *wanted,
            format!("order {id} ended {} instead of {wanted}", view["status"]),
        );
    }

    println!(
        "\nservices                 invocations  records  failed  cold starts  init p50  p50      p99      max memory"
    );
    for (id, stats) in deployed.runner.stats() {
        println!(
            "  {id:<22} {:>11}  {:>7}  {:>6}  {:>11}  {:>5.1} ms {:>5} ms {:>5} ms {:>7.1} MiB",
            stats.invocations,
            stats.records,
            stats.failed_records,
            stats.cold_starts,
            percentile(&stats.init_durations, 0.5).as_secs_f64() * 1e3,
            percentile(&stats.durations, 0.5).as_millis(),
            percentile(&stats.durations, 0.99).as_millis(),
            stats.max_rss_kib as f64 / 1024.0
        );
    }

    println!("\npayments");
    for payment in deployed.scan("PaymentsTableName").await {
        println!(
            "  {:<44} {:<9} {}",
            payment["orderId"].as_str().unwrap_or(""),
            payment["status"].as_str().unwrap_or(""),
            payment
                .get("declineCode")
                .or(payment.get("refundId"))
                .and_then(Value::as_str)
                .unwrap_or("")
        );
    }
    println!(
        "stock      SKU-MUG {:?}, SKU-TEA {:?}, SKU-RARE {:?}",
        deployed.stock("SKU-MUG").await.unwrap_or(0),
        deployed.stock("SKU-TEA").await.unwrap_or(0),
        deployed.stock("SKU-RARE").await.unwrap_or(0)
    );
    let stock = (
        deployed.stock("SKU-MUG").await,
        deployed.stock("SKU-TEA").await,
        deployed.stock("SKU-RARE").await,
    );
    expect.check(
        stock == (Some(8), Some(7), Some(1)),
        format!("stock ended {stock:?}, not MUG 8 (Bob's released), TEA 7, RARE 1"),
    );
    if let Some((cy, _)) = placed.get(2) {
        let payment = deployed
            .item("PaymentsTableName", &[("orderId", cy)])
            .await
            .unwrap_or_default();
        expect.check(
            payment.get("status").and_then(Value::as_str) == Some("REFUNDED"),
            format!(
                "Cy's payment ended {:?}, not REFUNDED",
                payment.get("status")
            ),
        );
    }
    let emails = deployed
        .scan("NotificationsTableName")
        .await
        .into_iter()
        .filter(|n| n.contains_key("subject"))
        .count();
    println!("emails     {emails} sent");
    expect.check(
        emails == 8,
        format!("{emails} emails, not 8 (placed x4, confirmed x2, cancelled x2)"),
    );

    println!("\nanalytics");
    let counters = deployed.analytics().await;
    for (counter, amounts) in &counters {
        let fields: Vec<String> = amounts
            .iter()
            .map(|(k, v)| format!("{k} {}", v.normalize()))
            .collect();
        println!("  {counter:<30} {}", fields.join(", "));
    }
    let day = chrono::Utc::now().format("DAY#%Y-%m-%d").to_string();
    let placed_count = counters
        .get(&day)
        .and_then(|d| d.get("ordersPlaced"))
        .copied()
        .unwrap_or_default();
    let count = |name: &str| {
        counters
            .get(&day)
            .and_then(|d| d.get(name))
            .copied()
            .unwrap_or_default()
    };
    expect.check(
        (
            placed_count,
            count("ordersConfirmed"),
            count("ordersCancelled"),
        ) == (4.into(), 2.into(), 2.into()),
        format!(
            "analytics counted {placed_count} placed, {} confirmed, {} cancelled; not 4, 2, 2",
            count("ordersConfirmed"),
            count("ordersCancelled")
        ),
    );

    // Ada's order as the functions' logs tell it (what `orderflow-local trace <id>` shows).
    if let Some((ada, _)) = placed.first() {
        let steps = orderflow_local::trace::follow(deployed.runner.log.dir(), ada);
        println!("\nAda's order through the services (orderflow-local trace {ada})");
        print!("{}", orderflow_local::trace::render(&steps));
        let handled = |function: &str, event: &str| {
            steps.iter().any(|s| {
                s.function == function
                    && s.event_type == event
                    && s.outcome.as_deref() == Some("handled")
            })
        };
        for function in [
            "PaymentFunction",
            "InventoryFunction",
            "NotificationFunction",
            "AnalyticsFunction",
        ] {
            expect.check(
                handled(function, "OrderPlaced"),
                format!("the logs do not show {function} handling Ada's OrderPlaced"),
            );
        }
        expect.check(
            handled("OrdersFunction", "PaymentProcessed")
                && handled("OrdersFunction", "InventoryReserved")
                && handled("NotificationFunction", "OrderConfirmed"),
            "the logs do not show Ada's order confirmed and the customer told".into(),
        );
    }

    println!("\ndead-letter queues");
    for (service, queue) in deployed.dead_letter_queues() {
        let messages = deployed.peek(&queue).await;
        let kinds: Vec<&str> = messages
            .iter()
            .map(|m| {
                if m.error_kind.is_empty() {
                    "(redriven)"
                } else {
                    m.error_kind.as_str()
                }
            })
            .collect();
        println!("  {service:<20} {} {}", messages.len(), kinds.join(", "));
        let wanted = match service.as_str() {
            "Orders" | "Payment" | "Inventory" | "Notification" | "Analytics" => 1,
            _ => 0,
        };
        expect.check(
            messages.len() == wanted && messages.iter().all(|m| m.error_kind == "MalformedJson"),
            format!("{service} DLQ holds {kinds:?}, expected {wanted} MalformedJson"),
        );
    }

    // The same run as CloudWatch would count it, from the EMF documents the functions wrote.
    let functions = orderflow_local::metrics::collect(deployed.runner.log.dir());
    println!("\nmetrics per function (EMF documents in their logs; orderflow-local metrics)");
    print!("{}", orderflow_local::metrics::render(&functions));
    for service in [
        "Orders",
        "Payment",
        "Inventory",
        "Notification",
        "Analytics",
    ] {
        let function = format!("{service}Function");
        let malformed = functions
            .get(&function)
            .and_then(|m| m.dead_lettered.get("MalformedJson"))
            .copied()
            .unwrap_or_default();
        expect.check(
            functions.get(&function).is_some_and(|m| m.invocations > 0 && m.received > 0) && malformed == 1,
            format!("{function}'s metrics count {malformed} MalformedJson dead-lettered; its DLQ holds 1"),
        );
    }

    // Every request the functions and their event sources made, as the runner's proxy counted it.
    if let Some(proxy) = deployed.runner.proxy() {
        let usage = proxy.tally().snapshot();
        println!(
            "\nrequests on the wire (counted by orderflow-local's proxy, by caller and service)"
        );
        print!("{}", orderflow_local::proxy::tally::render(&usage));
        for service in [
            "Payment",
            "Inventory",
            "Notification",
            "Analytics",
            "Orders",
        ] {
            let dynamodb: u64 = usage
                .iter()
                .filter(|(k, _)| {
                    k.caller == format!("{service}Function")
                        && k.service == orderflow_local::proxy::Service::DynamoDb
                })
                .map(|(_, u)| u.requests)
                .sum();
            expect.check(
                dynamodb > 0,
                format!("the proxy counted no DynamoDB request of {service}Function"),
            );
        }
    }

    deployed.stop().await;
    println!("\nfinished in {} s", started.elapsed().as_secs());
    if expect.0.is_empty() {
        println!("every expectation held");
    } else {
        println!("\nNOT AS EXPECTED:");
        for miss in &expect.0 {
            println!("  - {miss}");
        }
        std::process::exit(1);
    }
}
