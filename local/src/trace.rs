//! Following one order through every function's log: the lines whose record is about it (its
//! order id, or its correlation id), in time order. The functions log JSON lines with a
//! `record` span (see README, "Operating"); the runner keeps one file per function.

use std::path::Path;

use serde_json::Value;

use crate::logs::function_logs;

/// One line about the order.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// When (RFC 3339, as logged).
    pub timestamp: String,
    /// The function (its log file's name).
    pub function: String,
    /// The event the record carried.
    pub event_type: String,
    /// The log message.
    pub message: String,
    /// How the record ended, on its `record done` line.
    pub outcome: Option<String>,
    /// The error kind, if it failed.
    pub kind: Option<String>,
    /// How long the record took (ms), on its `record done` line.
    pub duration_ms: Option<f64>,
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Every line about `id` (an order id or a correlation id) in the function logs under `dir`,
/// in time order.
pub fn follow(dir: &Path, id: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for log in function_logs(dir) {
        let function = log.function;
        let content = log.content;
        for line in content.lines() {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            // A record's span fields are at the line's top level (`telemetry::json_lines`).
            let about = [&entry["aggregate_id"], &entry["correlation_id"]]
                .iter()
                .any(|v| v.as_str() == Some(id));
            if !about {
                continue;
            }
            steps.push(Step {
                timestamp: text(&entry["timestamp"]).unwrap_or_default(),
                function: function.clone(),
                event_type: text(&entry["event_type"]).unwrap_or_default(),
                message: text(&entry["message"]).unwrap_or_default(),
                outcome: text(&entry["outcome"]),
                kind: text(&entry["kind"]),
                duration_ms: entry["duration_ms"].as_f64(),
            });
        }
    }
    // RFC 3339 timestamps in UTC sort as text.
    steps.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    steps
}

/// The order's path, one record per line: when, which function, which event, how it ended.
pub fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps.iter().filter(|s| s.outcome.is_some()) {
        let time = step.timestamp.get(11..23).unwrap_or(&step.timestamp);
        let outcome = match (&step.outcome, &step.kind) {
            (Some(outcome), Some(kind)) => format!("{outcome} ({kind})"),
            (Some(outcome), None) => outcome.clone(),
            _ => String::new(),
        };
        let duration = step
            .duration_ms
            .map(|ms| format!("{ms:.1} ms"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {time}  {:<22} {:<20} {:<30} {duration}\n",
            step.function, step.event_type, outcome
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_about_an_order_come_from_every_function_in_time_order() {
        let dir = std::env::temp_dir().join(format!("orderflow-trace-{}", std::process::id()));
        let stack = dir.join("of-run-1");
        std::fs::create_dir_all(&stack).unwrap();
        let line = |t: &str, order: &str, event: &str, message: &str, extra: &str| {
            format!(
                r#"{{"timestamp":"2026-12-03T10:00:{t}Z","message":"{message}"{extra},"aggregate_id":"{order}","correlation_id":"c-{order}","event_type":"{event}"}}"#
            )
        };
        std::fs::write(
            stack.join("PaymentFunction.log"),
            [
                line("01.000", "ord-1", "OrderPlaced", "handling", ""),
                line(
                    "01.500",
                    "ord-1",
                    "OrderPlaced",
                    "record done",
                    r#","outcome":"handled","duration_ms":12.5"#,
                ),
                line(
                    "01.600",
                    "ord-2",
                    "OrderPlaced",
                    "record done",
                    r#","outcome":"handled","duration_ms":1.0"#,
                ),
                "not json: a panic message".into(),
            ]
            .join("\n"),
        )
        .unwrap();
        std::fs::write(
            stack.join("OrdersFunction.log"),
            line(
                "02.000",
                "ord-1",
                "PaymentProcessed",
                "record done",
                r#","outcome":"dead_lettered","kind":"AwsPermanent","duration_ms":3.0"#,
            ),
        )
        .unwrap();

        let by_order = follow(&dir, "ord-1");
        let by_correlation = follow(&dir, "c-ord-1");

        assert_eq!(by_order, by_correlation);
        let path: Vec<(&str, &str, Option<&str>)> = by_order
            .iter()
            .map(|s| {
                (
                    s.function.as_str(),
                    s.message.as_str(),
                    s.outcome.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            path,
            [
                ("PaymentFunction", "handling", None),
                ("PaymentFunction", "record done", Some("handled")),
                ("OrdersFunction", "record done", Some("dead_lettered")),
            ]
        );
        let shown = render(&by_order);
        assert_eq!(shown.lines().count(), 2, "{shown}");
        assert!(shown.contains("dead_lettered (AwsPermanent)"), "{shown}");
        assert!(shown.contains("12.5 ms"), "{shown}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
