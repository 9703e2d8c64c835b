//! When each order's last effect happened: the latest `record done` line any function logged
//! about it (its `aggregate_id`), read from the function logs the runner keeps.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    timestamp: Option<&'a str>,
    #[serde(borrow)]
    message: Option<&'a str>,
    #[serde(borrow)]
    outcome: Option<&'a str>,
    /// The record span's fields, at the line's top level (`orderflow::telemetry::json_lines`).
    #[serde(borrow)]
    aggregate_id: Option<&'a str>,
    #[serde(borrow)]
    event_type: Option<&'a str>,
}

/// An order's last effect.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LastEffect {
    /// When it was logged.
    pub(crate) at: DateTime<Utc>,
    /// The event its record carried.
    pub(crate) event_type: String,
    /// Records about the order that ended handled (or as duplicates).
    pub(crate) effects: usize,
}

/// The last effect of each order in `orders`, from the function logs under `dir`.
pub(crate) fn last_effects(dir: &Path, orders: &HashSet<String>) -> BTreeMap<String, LastEffect> {
    let mut last: BTreeMap<String, LastEffect> = BTreeMap::new();
    for log in orderflow_local::logs::function_logs(dir) {
        for text in log.content.lines() {
            // Cheap filter first: most lines are not a record's last word.
            if !text.contains("record done") {
                continue;
            }
            let Ok(line) = serde_json::from_str::<Line>(text) else {
                continue;
            };
            let Some(timestamp) = line.timestamp else {
                continue;
            };
            if line.message != Some("record done")
                || !matches!(line.outcome, Some("handled" | "duplicate"))
            {
                continue;
            }
            let Some(order) = line.aggregate_id.filter(|id| orders.contains(*id)) else {
                continue;
            };
            let Ok(at) = DateTime::parse_from_rfc3339(timestamp) else {
                continue;
            };
            let at = at.with_timezone(&Utc);
            let entry = last.entry(order.to_owned()).or_insert_with(|| LastEffect {
                at,
                event_type: String::new(),
                effects: 0,
            });
            entry.effects += 1;
            if at >= entry.at {
                entry.at = at;
                entry.event_type = line.event_type.unwrap_or_default().to_owned();
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_handled_record_about_each_order_is_its_last_effect() {
        let dir = std::env::temp_dir().join(format!("latency-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let line = |ts: &str, order: &str, event: &str, outcome: &str| {
            format!(
                r#"{{"timestamp":"{ts}","level":"INFO","message":"record done","outcome":"{outcome}","aggregate_id":"{order}","event_type":"{event}"}}"#
            )
        };
        std::fs::write(
            dir.join("PaymentFunction.log"),
            [
                line(
                    "2026-12-04T10:00:01.000000Z",
                    "o-1",
                    "OrderPlaced",
                    "handled",
                ),
                line(
                    "2026-12-04T10:00:09.000000Z",
                    "o-2",
                    "OrderPlaced",
                    "failed",
                ),
                line(
                    "2026-12-04T10:00:02.000000Z",
                    "o-2",
                    "OrderPlaced",
                    "handled",
                ),
                r#"{"timestamp":"2026-12-04T10:00:05Z","message":"handling"}"#.to_owned(),
            ]
            .join("\n"),
        )
        .expect("write");
        std::fs::write(
            dir.join("NotificationFunction.log"),
            line(
                "2026-12-04T10:00:03.500000Z",
                "o-1",
                "OrderConfirmed",
                "handled",
            ),
        )
        .expect("write");
        let orders: HashSet<String> = ["o-1".to_owned(), "o-2".to_owned()].into();
        let last = last_effects(&dir, &orders);
        assert_eq!(last["o-1"].event_type, "OrderConfirmed");
        assert_eq!(last["o-1"].effects, 2);
        assert_eq!(last["o-1"].at.to_rfc3339(), "2026-12-04T10:00:03.500+00:00");
        // A failed record is no effect.
        assert_eq!(last["o-2"].effects, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
