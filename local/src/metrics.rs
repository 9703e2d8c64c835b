//! The functions' metrics as CloudWatch would extract them: every EMF document (a JSON line
//! with `_aws`) in each function's log, summed per function, with the percentiles of
//! `HandlerDuration` (see `orderflow::telemetry::metrics` for what each metric is).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::logs::function_logs;

/// One function's metrics over every invocation it logged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionMetrics {
    /// The function (its log file's name).
    pub function: String,
    /// EMF invocation documents seen.
    pub invocations: u64,
    /// Of those, cold starts.
    pub cold_starts: u64,
    /// `RecordsReceived`, summed.
    pub received: u64,
    /// `RecordsSucceeded`, summed.
    pub succeeded: u64,
    /// `RecordsFailed`, summed.
    pub failed: u64,
    /// `RecordsDeadLettered` by `ErrorKind`, summed.
    pub dead_lettered: BTreeMap<String, u64>,
    /// `DuplicatesSkipped`, summed.
    pub duplicates: u64,
    /// `FollowUpsPublished`, summed.
    pub follow_ups: u64,
    /// Every `HandlerDuration` value with its count.
    pub handler_ms: Vec<(f64, u64)>,
}

impl FunctionMetrics {
    /// Records set aside in the DLQ, whatever their kind.
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered.values().sum()
    }

    /// The `p`-th percentile (0–100) of the handler durations, if there were any.
    pub fn handler_percentile(&self, p: f64) -> Option<f64> {
        let mut values = self.handler_ms.clone();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: u64 = values.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return None;
        }
        // Nearest rank: the smallest value with at least p% of the observations at or below it
        // (in integers of per-mille, so 99.9 of 1000 is rank 999, not 1000).
        let per_mille = (p * 10.0).round().clamp(0.0, 1000.0) as u64;
        let rank = (per_mille * total).div_ceil(1000).max(1);
        let mut seen = 0;
        values.into_iter().find_map(|(value, n)| {
            seen += n;
            (seen >= rank).then_some(value)
        })
    }

    fn add(&mut self, document: &Value) {
        let count = |name: &str| document[name].as_u64().unwrap_or(0);
        if let Some(kind) = document["ErrorKind"].as_str() {
            *self.dead_lettered.entry(kind.to_owned()).or_default() += count("RecordsDeadLettered");
            return;
        }
        self.invocations += 1;
        self.cold_starts += count("ColdStart");
        self.received += count("RecordsReceived");
        self.succeeded += count("RecordsSucceeded");
        self.failed += count("RecordsFailed");
        self.duplicates += count("DuplicatesSkipped");
        self.follow_ups += count("FollowUpsPublished");
        self.handler_ms
            .extend(observations(&document["HandlerDuration"]));
    }
}

/// A metric's values as EMF writes them: a number, an array, or `Values` with `Counts`.
fn observations(value: &Value) -> Vec<(f64, u64)> {
    match value {
        Value::Number(n) => n.as_f64().map(|v| (v, 1)).into_iter().collect(),
        Value::Array(values) => values
            .iter()
            .filter_map(Value::as_f64)
            .map(|v| (v, 1))
            .collect(),
        Value::Object(set) => {
            let list = |key: &str| {
                set.get(key)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            list("Values")
                .iter()
                .zip(list("Counts").iter())
                .filter_map(|(v, n)| Some((v.as_f64()?, n.as_u64()?)))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Every function's metrics from the EMF documents in the logs under `dir`, by function: its
/// name for a log in `dir` itself, `<stack>/<function>` for one in a stack's folder under it
/// (runs are never summed together).
pub fn collect(dir: &Path) -> BTreeMap<String, FunctionMetrics> {
    let mut functions = BTreeMap::new();
    for log in function_logs(dir) {
        let function = match &log.stack {
            Some(stack) => format!("{stack}/{}", log.function),
            None => log.function.clone(),
        };
        let content = log.content;
        for line in content.lines().filter(|l| l.starts_with(r#"{"_aws""#)) {
            let Ok(document) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            functions
                .entry(function.clone())
                .or_insert_with(|| FunctionMetrics {
                    function: function.clone(),
                    ..FunctionMetrics::default()
                })
                .add(&document);
        }
    }
    functions
}

/// A table: per function invocations, records, failures, DLQ sends by kind, duplicates,
/// follow-ups and handler duration p50 / p99.
pub fn render(functions: &BTreeMap<String, FunctionMetrics>) -> String {
    let mut out = format!(
        "  {:<36} {:>6} {:>5} {:>8} {:>6} {:>5} {:>5} {:>6} {:>8} {:>8}  {}\n",
        "function",
        "calls",
        "cold",
        "records",
        "ok",
        "fail",
        "dups",
        "follow",
        "p50 ms",
        "p99 ms",
        "dead-lettered"
    );
    for m in functions.values() {
        let ms = |p: f64| {
            m.handler_percentile(p)
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "-".into())
        };
        let dead: Vec<String> = m
            .dead_lettered
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        out.push_str(&format!(
            "  {:<36} {:>6} {:>5} {:>8} {:>6} {:>5} {:>5} {:>6} {:>8} {:>8}  {}\n",
            m.function,
            m.invocations,
            m.cold_starts,
            m.received,
            m.succeeded,
            m.failed,
            m.duplicates,
            m.follow_ups,
            ms(50.0),
            ms(99.0),
            if dead.is_empty() {
                "-".into()
            } else {
                dead.join(", ")
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_in_each_functions_log_are_summed_and_their_durations_ranked() {
        let dir = std::env::temp_dir().join(format!("orderflow-metrics-{}", std::process::id()));
        let stack = dir.join("of-run-1");
        std::fs::create_dir_all(&stack).unwrap();
        let invocation = |cold: u32, received: u32, ok: u32, durations: &str| {
            format!(
                r#"{{"_aws":{{"CloudWatchMetrics":[{{"Namespace":"of-run-1","Dimensions":[["Service"]],"Metrics":[]}}],"Timestamp":1}},"ColdStart":{cold},"RecordsReceived":{received},"RecordsSucceeded":{ok},"RecordsFailed":{},"DuplicatesSkipped":1,"FollowUpsPublished":2,"HandlerDuration":{durations},"Service":"payment"}}"#,
                received - ok
            )
        };
        let by_kind = r#"{"_aws":{"CloudWatchMetrics":[],"Timestamp":1},"RecordsDeadLettered":2,"Service":"payment","ErrorKind":"MalformedJson"}"#;
        std::fs::write(
            stack.join("PaymentFunction.log"),
            [
                r#"{"timestamp":"2026-12-03T10:00:00Z","message":"record done","RecordsReceived":99}"#.to_owned(),
                invocation(1, 3, 2, "[1.0,2.0,30.0]"),
                invocation(0, 1, 1, "4.0"),
                invocation(0, 100, 100, r#"{"Values":[5.0,6.0],"Counts":[90,10]}"#),
                by_kind.to_owned(),
                "thread 'main' panicked".to_owned(),
            ]
            .join("\n"),
        )
        .unwrap();

        std::fs::write(dir.join("PaymentFunction.log"), invocation(1, 7, 7, "2.0")).unwrap();
        let functions = collect(&dir);
        assert_eq!(
            functions["PaymentFunction"].received, 7,
            "a run in the folder itself"
        );
        let payment = &functions["of-run-1/PaymentFunction"];
        assert_eq!(
            payment.invocations, 3,
            "a log line with the same field is not a document"
        );
        assert_eq!(payment.cold_starts, 1);
        assert_eq!(
            (payment.received, payment.succeeded, payment.failed),
            (104, 103, 1)
        );
        assert_eq!(payment.duplicates, 3);
        assert_eq!(payment.follow_ups, 6);
        assert_eq!(payment.dead_lettered_total(), 2);
        // 104 durations: 1, 2, 4, 30 once each, 5 ninety times, 6 ten times.
        assert_eq!(payment.handler_percentile(50.0), Some(5.0));
        assert_eq!(payment.handler_percentile(99.0), Some(6.0));
        assert_eq!(payment.handler_percentile(100.0), Some(30.0));
        assert_eq!(payment.handler_percentile(0.0), Some(1.0));
        let table = render(&functions);
        assert!(table.contains("2 MalformedJson"), "{table}");
        assert!(
            table
                .lines()
                .nth(1)
                .is_some_and(|l| l.contains("PaymentFunction")),
            "{table}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
