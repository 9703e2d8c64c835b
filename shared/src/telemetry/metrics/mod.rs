//! Metrics: one CloudWatch Embedded Metric Format (EMF) document per invocation, written to
//! standard output, where Lambda hands it to CloudWatch Logs and CloudWatch extracts the
//! metrics: no API call, no agent, nothing on the record's path.
//!
//! The consumer counts what happened to a batch ([`InvocationMetrics`]) and gives it to its
//! [`MetricsSink`]; [`EmfMetrics`] formats it with `metrique`'s EMF writer (AWS Labs). Per
//! invocation, under the namespace `POWERTOOLS_METRICS_NAMESPACE` and the dimension `Service`:
//!
//! | metric | unit | what |
//! |---|---|---|
//! | `RecordsReceived` | count | records in the batch |
//! | `RecordsSucceeded` | count | handled, duplicates and ignored |
//! | `RecordsFailed` | count | returned for another delivery (failed, not attempted) |
//! | `RecordsDeadLettered` | count | set aside in the DLQ; also per `ErrorKind` (own document) |
//! | `RecordsIgnored` | count | no handler for the event type (acknowledged) |
//! | `DuplicatesSkipped` | count | duplicates whose effect was not applied again, and where they were recognised: `DuplicatesFromCache`, `DuplicatesFromRecord` (the idempotency record; the handler did not run), `DuplicatesFromTransaction` (the handler ran, its commit was cancelled: its writes were discarded) |
//! | `FollowUpsPublished` | count | follow-up events handed to the event sink |
//! | `EventAge` | ms | per record: now − the event's `occurredAt` |
//! | `HandlerDuration` | ms | per record that ran: its whole path (unwrap, decode, idempotency, handler, follow-ups, DLQ hand-off or retry delay) |
//! | `ColdStart` | count | 1 on the execution environment's first invocation, else 0 |
//!
//! Properties beside them (searchable in Logs Insights, not dimensions): `FunctionName`,
//! `RequestId`, `TraceId`. EMF's limits hold by construction: 13 metrics and one or two
//! dimensions per document, and at most 100 values per metric (more records are summarised into
//! 100 buckets: the smallest and the largest value alone, the rest in 98 buckets of neighbouring
//! values, each with its count, so sums, counts, averages, minimum and maximum stay exact and
//! percentiles in between are approximate).

mod emf;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::consume::{BatchOutcome, DuplicateBy, Invocation, RecordOutcome};
use crate::env::{EnvError, Vars};

pub use emf::EmfMetrics;

/// `POWERTOOLS_METRICS_NAMESPACE`: the CloudWatch namespace; metrics are off without it.
pub const NAMESPACE_VAR: &str = "POWERTOOLS_METRICS_NAMESPACE";
/// `POWERTOOLS_SERVICE_NAME`: the `Service` dimension (default: the consumer's name).
pub const SERVICE_VAR: &str = "POWERTOOLS_SERVICE_NAME";
/// `POWERTOOLS_METRICS_DISABLED`: `true` (any case) or `1` turns metrics off, as in Powertools.
pub const DISABLED_VAR: &str = "POWERTOOLS_METRICS_DISABLED";
/// `AWS_LAMBDA_FUNCTION_NAME`: written beside the metrics as `FunctionName`.
pub const FUNCTION_NAME_VAR: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Where an invocation's metrics go.
pub trait MetricsSink: Send + Sync {
    /// Records one invocation's metrics. Never fails the invocation: a sink that cannot write
    /// says so in the log.
    fn record(&self, metrics: &InvocationMetrics);
}

/// What one invocation of a consumer did, as its metrics count it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InvocationMetrics {
    /// Lambda's request id.
    pub request_id: String,
    /// The invocation's X-Ray trace id.
    pub trace_id: Option<String>,
    /// The execution environment's first invocation.
    pub cold_start: bool,
    /// Records in the batch.
    pub received: usize,
    /// Handled, duplicates and ignored.
    pub succeeded: usize,
    /// Returned for another delivery: failed, not attempted, or sent back to the queue to wait.
    pub failed: usize,
    /// Of `succeeded`, without a handler for their event type.
    pub ignored: usize,
    /// Set aside in the DLQ, by `errorKind`.
    pub dead_lettered: BTreeMap<&'static str, usize>,
    /// Duplicates (records that ended [`RecordOutcome::Duplicate`]), by where they were
    /// recognised.
    pub duplicates: BTreeMap<DuplicateBy, usize>,
    /// Follow-up events handed to the event sink (published again for a duplicate).
    pub follow_ups: usize,
    /// Per decoded record: now − `occurredAt`, in milliseconds.
    pub event_age_ms: Vec<f64>,
    /// Per record that ran (not the ones not attempted): from start to settled, in
    /// milliseconds.
    pub handler_ms: Vec<f64>,
}

impl InvocationMetrics {
    /// Counts `batch`, processed in `invocation`.
    pub fn of(batch: &BatchOutcome, invocation: &Invocation) -> Self {
        let mut metrics = InvocationMetrics {
            request_id: invocation.request_id.clone(),
            trace_id: invocation.trace_id.clone(),
            cold_start: invocation.cold_start,
            received: batch.records.len(),
            ..InvocationMetrics::default()
        };
        for (i, (_, outcome)) in batch.records.iter().enumerate() {
            match outcome {
                RecordOutcome::Handled | RecordOutcome::Duplicate => metrics.succeeded += 1,
                RecordOutcome::Ignored(_) => {
                    metrics.succeeded += 1;
                    metrics.ignored += 1;
                }
                RecordOutcome::DeadLettered(err) => {
                    *metrics.dead_lettered.entry(err.kind()).or_default() += 1;
                }
                RecordOutcome::Failed(_)
                | RecordOutcome::SentBack(_)
                | RecordOutcome::NotAttempted(_) => metrics.failed += 1,
            }
            // A batch built without stats (`BatchOutcome` has public fields) still counts.
            let Some(stats) = batch.stats.get(i) else {
                continue;
            };
            if let (RecordOutcome::Duplicate, Some(how)) = (outcome, stats.duplicate_by) {
                *metrics.duplicates.entry(how).or_default() += 1;
            }
            if !matches!(outcome, RecordOutcome::NotAttempted(_)) {
                metrics.handler_ms.push(millis(stats.duration));
            }
            metrics.event_age_ms.extend(stats.event_age.map(millis));
            metrics.follow_ups += stats.follow_ups;
        }
        metrics
    }

    /// Records set aside in the DLQ, whatever their kind.
    pub fn dead_lettered_total(&self) -> usize {
        self.dead_lettered.values().sum()
    }

    /// Duplicates, however recognised.
    pub fn duplicates_total(&self) -> usize {
        self.duplicates.values().sum()
    }

    /// Duplicates recognised `how`.
    pub fn duplicates_found_by(&self, how: DuplicateBy) -> usize {
        self.duplicates.get(&how).copied().unwrap_or(0)
    }
}

/// Milliseconds, to the microsecond.
pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// How a function's metrics are configured, from the environment the template sets.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct MetricsConfig {
    /// The CloudWatch namespace; `None` turns metrics off.
    pub namespace: Option<String>,
    /// The `Service` dimension; `None`: the consumer's name.
    pub service: Option<String>,
    /// [`FUNCTION_NAME_VAR`], written as a property.
    pub function_name: Option<String>,
}

impl MetricsConfig {
    /// Reads [`NAMESPACE_VAR`], [`SERVICE_VAR`], [`DISABLED_VAR`] and the function's name.
    /// Never fails today; a `Result` like every other reader of the environment.
    pub fn from_vars(vars: &Vars) -> Result<Self, EnvError> {
        let disabled = vars
            .optional(DISABLED_VAR)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1");
        Ok(MetricsConfig {
            namespace: vars.optional(NAMESPACE_VAR).filter(|_| !disabled),
            service: vars.optional(SERVICE_VAR),
            function_name: vars.optional(FUNCTION_NAME_VAR),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_namespace_there_are_no_metrics() {
        let vars = Vars::from_map([(SERVICE_VAR, "payment")]);
        let config = MetricsConfig::from_vars(&vars).unwrap();
        assert!(EmfMetrics::stdout(&config, "payment").is_none());

        for disabled in ["true", "TRUE", "1"] {
            let vars = Vars::from_map([(NAMESPACE_VAR, "orderflow"), (DISABLED_VAR, disabled)]);
            let config = MetricsConfig::from_vars(&vars).unwrap();
            assert!(
                EmfMetrics::stdout(&config, "payment").is_none(),
                "{disabled}"
            );
        }
        let vars = Vars::from_map([(NAMESPACE_VAR, "orderflow"), (DISABLED_VAR, "false")]);
        let config = MetricsConfig::from_vars(&vars).unwrap();
        assert!(EmfMetrics::stdout(&config, "payment").is_some());
    }
}
