//! `make run`: the order flow on a local AWS emulator, told as it happens.
//!
//! Every service's real handler code runs in-process against the emulator named by
//! `AWS_ENDPOINT_URL`, wired as the template wires it. (Next step: a local runner that starts
//! each function's release binary against a Lambda Runtime API instead.)

// A demo: a failed call ends it with the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use orderflow_tests::emulator;
use orderflow_tests::flow::Flow;
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let aws = Arc::new(emulator().await);
    println!("orderflow on the emulator at {}\n", aws.endpoint);
    let mut flow = Flow::new(aws.clone()).await;
    println!("topic      {}", flow.topic);
    for (name, (_, dlq)) in &flow.queues {
        let filter = subscribed_types(&flow, name);
        println!(
            "queue      {name:<13} <- {filter}   (DLQ {})",
            dlq.arn.rsplit(':').next().unwrap_or_default()
        );
    }
    let store = inventory::DynamoInventoryStore::new(aws.dynamodb.clone(), &flow.tables.inventory);
    for (sku, units) in [("SKU-MUG", 10), ("SKU-TEA", 10), ("SKU-RARE", 1)] {
        store.set_stock(sku, units).await.unwrap();
    }
    println!("stock      SKU-MUG 10, SKU-TEA 10, SKU-RARE 1\n");

    let orders = [
        (
            "Ada orders 2 mugs and a tea",
            "order-ada",
            json!({"customerId": "cust-ada", "customerEmail": "ada@example.com", "currency": "EUR",
            "items": [{"sku": "SKU-MUG", "quantity": 2, "unitPrice": "12.50"}, {"sku": "SKU-TEA", "quantity": 1, "unitPrice": "15.48"}]}),
        ),
        (
            "Bob's card is declined",
            "order-bob",
            json!({"customerId": "decline-bob", "customerEmail": "bob@example.com", "currency": "EUR",
            "items": [{"sku": "SKU-MUG", "quantity": 1, "unitPrice": "12.50"}]}),
        ),
        (
            "Cy wants 5 of a SKU with 1 left",
            "order-cy",
            json!({"customerId": "cust-cy", "customerEmail": "cy@example.com", "currency": "EUR",
            "items": [{"sku": "SKU-RARE", "quantity": 5, "unitPrice": "99.00"}]}),
        ),
        (
            "an invalid request",
            "order-bad",
            json!({"customerId": "", "currency": "euro", "items": [{"sku": "SKU-MUG", "quantity": 0, "unitPrice": "1"}]}),
        ),
    ];
    let mut ids = Vec::new();
    for (story, key, body) in &orders {
        let (status, response) = flow.http("POST", "/orders", Some(key), Some(body)).await;
        match response["orderId"].as_str() {
            Some(id) => {
                println!(
                    "POST /orders  {story:<34} -> {status} {id} (total {} {})",
                    response["total"].as_str().unwrap_or(""),
                    response["currency"].as_str().unwrap_or("")
                );
                ids.push(id.to_owned());
            }
            None => println!(
                "POST /orders  {story:<34} -> {status} {}",
                response["errors"]
            ),
        }
    }

    println!(
        "\nplaying the event source mappings: orders stream -> outbox relay -> SNS -> queues -> consumers ..."
    );
    let stats = flow.run(1).await;
    println!(
        "           {} stream records, {} messages, {} failed deliveries\n",
        stats.stream_records, stats.messages, stats.failures
    );

    for id in &ids {
        let (_, view) = flow.http("GET", &format!("/orders/{id}"), None, None).await;
        let history: Vec<&str> = view["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["status"].as_str())
            .collect();
        let detail = view["cancelDetail"]
            .as_str()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        println!(
            "GET /orders/{id}  {:<9} {}{detail}",
            view["status"].as_str().unwrap_or(""),
            history.join(" -> ")
        );
    }
    let snapshot = flow.snapshot().await;
    println!();
    for payment in &snapshot["payments"] {
        println!(
            "payment    {} {:<8} {}",
            payment["orderId"].as_str().unwrap_or(""),
            payment["status"].as_str().unwrap_or(""),
            payment["declineCode"]
                .as_str()
                .or(payment["refundId"].as_str())
                .unwrap_or("")
        );
    }
    for item in snapshot["inventory"]
        .iter()
        .filter(|i| i["pk"].as_str().is_some_and(|p| p.starts_with("SKU#")))
    {
        println!(
            "stock      {} {}",
            item["sku"].as_str().unwrap_or(""),
            item["stock"]
        );
    }
    for message in snapshot["notifications"]
        .iter()
        .filter(|n| n.get("subject").is_some())
    {
        println!(
            "email      to {:<16} {}",
            message["to"].as_str().unwrap_or(""),
            message["subject"].as_str().unwrap_or("")
        );
    }
    for (counter, amounts) in flow.analytics().await {
        let fields: Vec<String> = amounts
            .iter()
            .filter(|(k, _)| *k != "pk")
            .map(|(k, v)| format!("{k} {}", v.normalize()))
            .collect();
        println!("analytics  {counter:<22} {}", fields.join(", "));
    }
    let outbox: Vec<&Value> = snapshot["orders"]
        .iter()
        .filter(|i| i["sk"].as_str().is_some_and(|s| s.starts_with("OUTBOX#")))
        .collect();
    println!(
        "outbox     {} events, {} sent",
        outbox.len(),
        outbox.iter().filter(|r| r["status"] == "SENT").count()
    );
}

fn subscribed_types(flow: &Flow, name: &str) -> String {
    let types = match name {
        "orders" => flow.services.orders.handled_event_types(),
        "payment" => flow.services.payment.handled_event_types(),
        "inventory" => flow.services.inventory.handled_event_types(),
        "notification" => flow.services.notification.handled_event_types(),
        _ => flow.services.analytics.handled_event_types(),
    };
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
