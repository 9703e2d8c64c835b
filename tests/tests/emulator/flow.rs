//! The whole order flow on the emulator: three orders (one confirmed, one whose payment is
//! declined, one out of stock) end where they should, and delivering every message and stream
//! record twice ends in exactly the same state as delivering each once.

use std::collections::BTreeMap;
use std::sync::Arc;

use orderflow_tests::emulator;
use orderflow_tests::flow::Flow;
use serde_json::{Value, json};

async fn seed_stock(flow: &Flow) {
    let store =
        inventory::DynamoInventoryStore::new(flow.aws.dynamodb.clone(), flow.table("inventory"));
    for (sku, units) in [("SKU-MUG", 10), ("SKU-TEA", 10), ("SKU-RARE", 1)] {
        store.set_stock(sku, units).await.expect("seed stock");
    }
}

fn order(customer: &str, items: Value) -> Value {
    json!({"customerId": customer, "currency": "EUR", "customerEmail": format!("{customer}@example.com"), "items": items})
}

/// Places the three orders; returns their ids.
async fn place_orders(flow: &Flow) -> [String; 3] {
    let requests = [
        (
            "order-A",
            order(
                "cust-ada",
                json!([{"sku": "SKU-MUG", "quantity": 2, "unitPrice": "12.50"}, {"sku": "SKU-TEA", "quantity": 1, "unitPrice": "15.48"}]),
            ),
        ),
        (
            "order-B",
            order(
                "decline-bob",
                json!([{"sku": "SKU-MUG", "quantity": 1, "unitPrice": "12.50"}]),
            ),
        ),
        (
            "order-C",
            order(
                "cust-cy",
                json!([{"sku": "SKU-RARE", "quantity": 5, "unitPrice": "99.00"}]),
            ),
        ),
    ];
    let mut ids = Vec::new();
    for (key, body) in requests {
        let (status, response) = flow.http("POST", "/orders", Some(key), Some(&body)).await;
        assert_eq!(status, 201, "{response}");
        ids.push(response["orderId"].as_str().expect("orderId").to_owned());
    }
    [ids[0].clone(), ids[1].clone(), ids[2].clone()]
}

async fn item(flow: &Flow, table: &str, key: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let mut request = flow.aws.dynamodb.get_item().table_name(table);
    for (name, value) in key {
        request = request.key(
            *name,
            aws_sdk_dynamodb::types::AttributeValue::S((*value).to_owned()),
        );
    }
    let out = request.send().await.expect("GetItem");
    out.item()
        .map(|i| serde_dynamo::from_item(i.clone()).expect("item"))
        .unwrap_or_default()
}

#[tokio::test]
async fn three_orders_end_confirmed_declined_and_out_of_stock() {
    let aws = Arc::new(emulator().await);
    let mut flow = Flow::new(aws).await;
    seed_stock(&flow).await;
    let [a, b, c] = place_orders(&flow).await;
    let stats = flow.run(1).await;
    assert_eq!(stats.failures, 0, "{stats:?}");

    // Orders: A confirmed; B cancelled (payment); C cancelled (stock), each with its history.
    let (status, view) = flow.http("GET", &format!("/orders/{a}"), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(view["status"], "CONFIRMED");
    assert_eq!(view["paymentId"], format!("pay-{a}"));
    let history: Vec<&str> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history.first(), Some(&"PLACED"));
    assert_eq!(history.last(), Some(&"CONFIRMED"));
    let (_, view) = flow.http("GET", &format!("/orders/{b}"), None, None).await;
    assert_eq!(view["status"], "CANCELLED");
    assert_eq!(view["cancelDetail"], "the card issuer declined the charge");
    let (_, view) = flow.http("GET", &format!("/orders/{c}"), None, None).await;
    assert_eq!(view["status"], "CANCELLED");
    assert_eq!(
        view["cancelDetail"],
        "out of stock: SKU-RARE (1 of 5 available)"
    );

    // Payments: A captured, B declined, C charged then refunded by the saga.
    let payments = flow.table("payments");
    assert_eq!(
        item(&flow, payments, &[("orderId", &a)]).await["status"],
        "CAPTURED"
    );
    assert_eq!(
        item(&flow, payments, &[("orderId", &b)]).await["status"],
        "DECLINED"
    );
    let refunded = item(&flow, payments, &[("orderId", &c)]).await;
    assert_eq!(refunded["status"], "REFUNDED");
    assert_eq!(refunded["refundId"], format!("ref-pay-{c}"));

    // Stock: A holds 2 mugs and a tea; B's mug came back; C never reserved anything.
    let stock = |sku: &'static str| {
        let flow = &flow;
        async move {
            item(
                flow,
                flow.table("inventory"),
                &[("pk", &format!("SKU#{sku}"))],
            )
            .await["stock"]
                .clone()
        }
    };
    assert_eq!(stock("SKU-MUG").await, json!(8));
    assert_eq!(stock("SKU-TEA").await, json!(9));
    assert_eq!(stock("SKU-RARE").await, json!(1));

    // Notifications: placed + confirmed for A, placed + cancelled for B and C.
    let snapshot = flow.snapshot().await;
    let subjects: Vec<&str> = snapshot["notifications"]
        .iter()
        .filter_map(|n| n["subject"].as_str())
        .collect();
    assert_eq!(subjects.len(), 6, "{subjects:?}");
    assert!(subjects.contains(&format!("Your order {a} is confirmed").as_str()));
    assert!(subjects.contains(&format!("Your order {b} was cancelled").as_str()));

    // Analytics: three placed, one confirmed, two cancelled; revenue counted once.
    let counters = flow.analytics().await;
    let day = &counters["DAY#<day>"];
    let n = |v: i64| rust_decimal::Decimal::from(v);
    assert_eq!(
        (
            day["ordersPlaced"],
            day["ordersConfirmed"],
            day["ordersCancelled"]
        ),
        (n(3), n(1), n(2))
    );
    let revenue = &counters["REVENUE#<day>#EUR"];
    assert_eq!(revenue["confirmed"], rust_decimal::Decimal::new(4048, 2));
    assert_eq!(revenue["placed"], rust_decimal::Decimal::new(54798, 2));

    // The outbox: every event the orders service emitted went out and was marked sent.
    let outbox: Vec<&Value> = snapshot["orders"]
        .iter()
        .filter(|i| i["sk"].as_str().is_some_and(|s| s.starts_with("OUTBOX#")))
        .collect();
    assert_eq!(outbox.len(), 6);
    assert!(
        outbox.iter().all(|row| row["status"] == "SENT"),
        "{outbox:?}"
    );

    // Nothing was dead-lettered.
    for wired in &flow.services {
        let (name, dlq) = (wired.service.name, &wired.dlq);
        assert!(
            flow.aws
                .receive_raw(dlq, 1, std::time::Duration::from_millis(300))
                .await
                .is_empty(),
            "{name} DLQ is not empty"
        );
    }
}

#[tokio::test]
async fn every_event_delivered_twice_ends_in_the_same_state_as_once() {
    let aws = Arc::new(emulator().await);
    let mut once = Flow::new(aws.clone()).await;
    let mut twice = Flow::new(aws).await;
    for flow in [&once, &twice] {
        seed_stock(flow).await;
        place_orders(flow).await;
    }
    let single = once.run(1).await;
    let double = twice.run(2).await;
    assert_eq!(
        single.failures + double.failures,
        0,
        "{single:?} {double:?}"
    );
    // Twice as many messages reached the queues: the relay published every event twice.
    assert!(double.messages > single.messages, "{single:?} {double:?}");

    let (a, b) = (once.snapshot().await, twice.snapshot().await);
    for role in a.keys() {
        assert_eq!(
            a[role], b[role],
            "table {role} differs between single and double delivery"
        );
    }
}
