//! Every table of a stack as its lasting state: what must be equal between a run with faults
//! and one without. Times, lease owners and attempt counters differ between any two runs and
//! are left out; analytics counters are compared summed over their shards.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::stack::Deployed;

/// Attributes that differ between two correct runs of the same orders: when something
/// happened, who held a claim, how many tries it took.
const VOLATILE: &[&str] = &[
    "at",
    "createdAt",
    "updatedAt",
    "placedAt",
    "occurredAt",
    "sentAt",
    "sentAtMs",
    "publishedAt",
    "reservedAt",
    "releasedAt",
    "chargedAt",
    "refundedAt",
    "expiration",
    "inProgressExpiration",
    "owner",
    "publishAttempts",
    "lastPublishError",
    "version",
];

/// The tables compared, by the stack output naming each.
pub const TABLES: &[&str] = &[
    "OrdersTableName",
    "PaymentsTableName",
    "InventoryTableName",
    "NotificationsTableName",
    "IdempotencyTableName",
];

/// A stack's lasting state: table → item key → item without its volatile attributes.
pub type Snapshot = BTreeMap<String, BTreeMap<String, Value>>;

/// What two correct runs may do differently, folded to what they must agree on:
/// - the id of a follow-up event is derived from the record that caused it, and which of two
///   saga events completes an order is a race: a message (notification) is keyed by its order
///   and subject, and the idempotency records (one per consumer and event) are counted per
///   consumer and status;
/// - an order cancelled before inventory saw it leaves a reservation `CANCELLED` with nothing
///   held, one cancelled after leaves it `RELEASED`: both hold no stock (the stock counts, which
///   are compared, say the rest).
fn fold(table: &str, items: Vec<(String, Value)>) -> BTreeMap<String, Value> {
    match table {
        "NotificationsTableName" => items
            .into_iter()
            .map(|(key, mut item)| {
                let key = match (item.get("orderId"), item.get("subject")) {
                    (Some(order), Some(subject)) => {
                        format!("orderId={} subject={}", text(order), text(subject))
                    }
                    _ => key,
                };
                if let Value::Object(map) = &mut item {
                    map.remove("pk");
                }
                (key, item)
            })
            .collect(),
        "OrdersTableName" => fold_orders(items),
        "PaymentsTableName" => items
            .into_iter()
            .map(|(key, mut item)| {
                // Cancelled before it was charged (voided) or after (refunded): no money kept.
                let undone = matches!(
                    item.get("status").and_then(Value::as_str),
                    Some("VOIDED" | "REFUNDED")
                );
                if undone && let Value::Object(map) = &mut item {
                    map.retain(|k, _| k == "orderId");
                    map.insert("status".into(), Value::from("NO MONEY KEPT"));
                }
                (key, item)
            })
            .collect(),
        "IdempotencyTableName" => {
            // The records of the events the run published, by key; the follow-ups' (whose ids
            // depend on races, and whose number on how an order was cancelled) only counted
            // when not COMPLETED, which must never be.
            let mut folded = BTreeMap::new();
            let mut unfinished = 0u64;
            for (key, item) in items {
                let id = item.get("id").map(text).unwrap_or_default();
                let published = id
                    .split_once('#')
                    .and_then(|(_, event)| uuid::Uuid::parse_str(event).ok())
                    .is_some_and(|event| event.get_version_num() != 5);
                let completed = item.get("status").and_then(Value::as_str) == Some("COMPLETED");
                if published {
                    let mut item = item;
                    if let Value::Object(map) = &mut item {
                        map.retain(|k, _| k == "id" || k == "status" || k == "payloadHash");
                    }
                    folded.insert(key, item);
                } else if !completed {
                    unfinished += 1;
                }
            }
            folded.insert(
                "follow-up events' records not COMPLETED".into(),
                Value::from(unfinished),
            );
            folded
        }
        "InventoryTableName" => items
            .into_iter()
            .map(|(key, mut item)| {
                let released = matches!(
                    item.get("status").and_then(Value::as_str),
                    Some("RELEASED" | "CANCELLED")
                );
                if released && let Value::Object(map) = &mut item {
                    map.insert("status".into(), Value::from("HOLDS NOTHING"));
                    map.remove("items");
                }
                (key, item)
            })
            .collect(),
        _ => items.into_iter().collect(),
    }
}

/// Leaves out what differs between two correct runs, at any depth (stored results hold events
/// with their own times).
fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        // Stored results and outbox rows keep whole events as JSON text.
        Value::String(text) if text.starts_with('{') => match serde_json::from_str::<Value>(text) {
            Ok(inner @ Value::Object(_)) => normalize(&inner),
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

/// The orders table: a cancelled order may or may not have learnt its payment or reservation
/// before the cancellation (and its history says which came first); a confirmed one says which
/// of payment and stock came first. Both are races every run can lose either way: what must
/// agree is each order's status, items, totals, its cancellation's reason, and its outbox's
/// event types. Follow-up ids and cause ids are left out (see [`fold`]).
fn fold_orders(items: Vec<(String, Value)>) -> BTreeMap<String, Value> {
    let cancelled: std::collections::BTreeSet<String> = items
        .iter()
        .filter(|(_, item)| {
            item.get("sk").and_then(Value::as_str) == Some("ORDER")
                && item.get("status").and_then(Value::as_str) == Some("CANCELLED")
        })
        .filter_map(|(_, item)| item.get("pk").map(text))
        .collect();
    let mut folded = BTreeMap::new();
    for (key, mut item) in items {
        let Value::Object(map) = &mut item else {
            continue;
        };
        let pk = map.get("pk").map(text).unwrap_or_default();
        let sk = map
            .get("sk")
            .map(text)
            .map(|sk| timeless(&sk))
            .unwrap_or_default();
        let is_cancelled = cancelled.contains(&pk);
        let half_way = sk.ends_with("#PAYMENT_RECEIVED") || sk.ends_with("#STOCK_RESERVED");
        let key = if sk.starts_with("OUTBOX#") {
            format!(
                "pk={pk} sk=OUTBOX#<{}>",
                map.get("eventType").map(text).unwrap_or_default()
            )
        } else if half_way && is_cancelled {
            continue;
        } else if half_way {
            map.remove("detail");
            map.insert(
                "status".into(),
                Value::from("PAYMENT_RECEIVED or STOCK_RESERVED"),
            );
            format!("pk={pk} sk=HISTORY#*#<payment or stock, whichever came first>")
        } else {
            key
        };
        if sk == "ORDER" && is_cancelled {
            map.remove("reservationId");
            map.remove("paymentId");
        }
        map.remove("sk");
        strip_ids(map);
        folded.insert(key, item);
    }
    folded
}

/// Leaves out event and cause ids at any depth (see [`fold`]).
fn strip_ids(map: &mut serde_json::Map<String, Value>) {
    map.remove("eventId");
    map.remove("causationId");
    for value in map.values_mut() {
        if let Value::Object(inner) = value {
            strip_ids(inner);
        }
    }
}

/// An item's key as text: its key attributes, in name order, without the times some sort keys
/// carry (`HISTORY#<when>#CONFIRMED` is `HISTORY#*#CONFIRMED` in every run).
fn key_of(item: &BTreeMap<String, Value>) -> String {
    ["pk", "sk", "id", "orderId", "messageId"]
        .iter()
        .filter_map(|name| {
            item.get(*name)
                .map(|v| format!("{name}={}", timeless(&text(v))))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn timeless(key: &str) -> String {
    key.split('#')
        .map(|part| {
            if chrono::DateTime::parse_from_rfc3339(part).is_ok() {
                "*"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("#")
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// Every compared table of `deployed`, and the analytics counters summed over their shards.
pub async fn snapshot(deployed: &Deployed) -> Snapshot {
    let mut tables = Snapshot::new();
    for table in TABLES {
        if !deployed.runner.stack.outputs.contains_key(*table) {
            continue;
        }
        let items = deployed
            .scan(table)
            .await
            .into_iter()
            .map(|item| {
                let normalized = normalize(&Value::Object(item.clone().into_iter().collect()));
                (key_of(&item), normalized)
            })
            .collect();
        tables.insert((*table).to_owned(), fold(table, items));
    }
    let counters = deployed
        .analytics()
        .await
        .into_iter()
        .map(|(key, amounts)| {
            let amounts: serde_json::Map<String, Value> = amounts
                .into_iter()
                .filter(|(name, _)| !["pk", "sk", "shard"].contains(&name.as_str()))
                .map(|(name, amount)| (name, Value::String(amount.normalize().to_string())))
                .collect();
            (key, Value::Object(amounts))
        })
        .collect();
    tables.insert("AnalyticsTableName (shards summed)".into(), counters);
    tables
}

/// Every difference between `expected` and `got`, naming the table and the item (whose key
/// names its order).
pub fn differences(expected: &Snapshot, got: &Snapshot) -> Vec<String> {
    let mut found = Vec::new();
    let empty = BTreeMap::new();
    for table in expected
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let want = expected.get(table).unwrap_or(&empty);
        let have = got.get(table).unwrap_or(&empty);
        for key in want
            .keys()
            .chain(have.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            match (want.get(key), have.get(key)) {
                (Some(_), None) => found.push(format!("{table}: {key} is missing")),
                (None, Some(item)) => {
                    found.push(format!("{table}: {key} should not exist: {item}"))
                }
                (Some(a), Some(b)) if a != b => {
                    found.push(format!("{table}: {key} is {b}, not {a}"))
                }
                _ => {}
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_and_claims_are_left_out_at_any_depth_and_differences_name_table_and_item() {
        let a = normalize(
            &json!({"pk": "ORDER#o-1", "status": "CONFIRMED", "updatedAt": "t1",
            "result": "{\"events\":[{\"eventId\":\"e\",\"occurredAt\":\"t1\"}]}"}),
        );
        let b = normalize(
            &json!({"pk": "ORDER#o-1", "status": "CONFIRMED", "updatedAt": "t2",
            "result": "{\"events\":[{\"eventId\":\"e\",\"occurredAt\":\"t2\"}]}"}),
        );
        assert_eq!(a, b);
        let snapshot = |status: &str| -> Snapshot {
            [(
                "OrdersTableName".to_owned(),
                [("pk=ORDER#o-1".to_owned(), json!({"status": status}))].into(),
            )]
            .into()
        };
        assert!(differences(&snapshot("CONFIRMED"), &snapshot("CONFIRMED")).is_empty());
        let found = differences(&snapshot("CONFIRMED"), &snapshot("CANCELLED"));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains("OrdersTableName") && found[0].contains("o-1"),
            "{found:?}"
        );
        assert_eq!(differences(&snapshot("X"), &Snapshot::new()).len(), 1);
        assert_eq!(
            timeless("HISTORY#2026-12-04T10:00:01.123456Z#CONFIRMED"),
            "HISTORY#*#CONFIRMED"
        );
        // Two runs that differ only by races both end in.
        let messages = |id: &str| {
            fold(
                "NotificationsTableName",
                vec![(
                    format!("pk=MESSAGE#{id}"),
                    json!({"pk": format!("MESSAGE#{id}"), "orderId": "o-1", "subject": "confirmed"}),
                )],
            )
        };
        assert_eq!(messages("a"), messages("b"));
        let reservation = |status: &str, items: Value| {
            fold(
                "InventoryTableName",
                vec![("r".into(), json!({"status": status, "items": items}))],
            )
        };
        assert_eq!(
            reservation("RELEASED", json!([{"sku": "S", "quantity": 1}])),
            reservation("CANCELLED", json!([]))
        );
        assert_ne!(
            reservation("RESERVED", json!([{"sku": "S", "quantity": 1}])),
            reservation("CANCELLED", json!([]))
        );
        let records = |records: &[(String, &str)]| {
            fold(
                "IdempotencyTableName",
                records
                    .iter()
                    .map(|(id, status)| (id.clone(), json!({"id": id, "status": status})))
                    .collect(),
            )
        };
        let published = format!("payment#{}", uuid::Uuid::from_u64_pair(42, 1));
        let follow_up = |n: u8| format!("orders#{}", uuid::Uuid::new_v5(&uuid::Uuid::nil(), &[n]));
        // Follow-ups' ids differ between runs; the published events' must all be there.
        assert_eq!(
            records(&[
                (published.clone(), "COMPLETED"),
                (follow_up(1), "COMPLETED")
            ]),
            records(&[
                (published.clone(), "COMPLETED"),
                (follow_up(2), "COMPLETED")
            ])
        );
        assert_ne!(
            records(&[(published.clone(), "COMPLETED")]),
            records(&[(follow_up(1), "COMPLETED")])
        );
        assert_ne!(
            records(&[(follow_up(1), "COMPLETED")]),
            records(&[(follow_up(1), "INPROGRESS")])
        );
    }
}
