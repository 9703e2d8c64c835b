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
//! | `RecordsSucceeded` | count | acknowledged: handled, duplicates, ignored |
//! | `RecordsFailed` | count | returned for another delivery (failed, not attempted) |
//! | `RecordsDeadLettered` | count | set aside in the DLQ; also per `ErrorKind` (own document) |
//! | `RecordsIgnored` | count | no handler for the event type (acknowledged) |
//! | `DuplicatesSkipped` | count | duplicates whose handler did not run, and by how they were found: `DuplicatesFromCache`, `DuplicatesFromRecord` (the idempotency record), `DuplicatesFromTransaction` (the commit) |
//! | `FollowUpsPublished` | count | follow-up events handed to the event sink |
//! | `EventAge` | ms | per record: now − the event's `occurredAt` |
//! | `HandlerDuration` | ms | per record: its whole path, decode to settled |
//! | `ColdStart` | count | 1 on the execution environment's first invocation, else 0 |
//!
//! Properties beside them (searchable in Logs Insights, not dimensions): `FunctionName`,
//! `RequestId`, `TraceId`. EMF's limits hold by construction: 13 metrics and one or two
//! dimensions per document, and at most 100 values per metric (more records are summarised into
//! 100 buckets of neighbouring values, each with its count, so sums, counts and averages stay
//! exact).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use metrique::emf::Emf;
use metrique::unit_of_work::metrics;
use metrique::writer::format::Format;
use metrique::writer::{MetricFlags, MetricValue, Observation, Value, ValueWriter};
use metrique::{CloseValue, RootMetric};

use crate::consume::{BatchOutcome, DuplicateBy, Invocation, RecordOutcome};
use crate::env::{EnvError, Vars};

/// `POWERTOOLS_METRICS_NAMESPACE`: the CloudWatch namespace; metrics are off without it.
pub const NAMESPACE_VAR: &str = "POWERTOOLS_METRICS_NAMESPACE";
/// `POWERTOOLS_SERVICE_NAME`: the `Service` dimension (default: the consumer's name).
pub const SERVICE_VAR: &str = "POWERTOOLS_SERVICE_NAME";
/// `POWERTOOLS_METRICS_DISABLED`: `true` turns metrics off (as in Powertools).
pub const DISABLED_VAR: &str = "POWERTOOLS_METRICS_DISABLED";

/// EMF's limit on values in one metric's array.
const MAX_VALUES: usize = 100;

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
    /// The execution environment's first invocation.
    pub cold_start: bool,
    /// Records in the batch.
    pub received: usize,
    /// Acknowledged: handled, duplicates and ignored.
    pub succeeded: usize,
    /// Returned for another delivery: failed or not attempted.
    pub failed: usize,
    /// Of `succeeded`, without a handler for their event type.
    pub ignored: usize,
    /// Set aside in the DLQ, by `errorKind`.
    pub dead_lettered: BTreeMap<&'static str, usize>,
    /// Duplicates whose handler did not run, by how they were found.
    pub duplicates: BTreeMap<DuplicateBy, usize>,
    /// Follow-up events handed to the event sink (published again for a duplicate).
    pub follow_ups: usize,
    /// Per decoded record: now − `occurredAt`, in milliseconds.
    pub event_age_ms: Vec<f64>,
    /// Per record: from start to settled, in milliseconds.
    pub handler_ms: Vec<f64>,
}

impl InvocationMetrics {
    /// Counts `batch`, processed in `invocation`.
    pub fn of(batch: &BatchOutcome, invocation: &Invocation) -> Self {
        let mut metrics = InvocationMetrics {
            request_id: invocation.request_id.clone(),
            cold_start: invocation.cold_start,
            received: batch.records.len(),
            ..InvocationMetrics::default()
        };
        for (_, outcome) in &batch.records {
            match outcome {
                RecordOutcome::Handled | RecordOutcome::Duplicate => metrics.succeeded += 1,
                RecordOutcome::Ignored(_) => {
                    metrics.succeeded += 1;
                    metrics.ignored += 1;
                }
                RecordOutcome::DeadLettered(err) => {
                    *metrics.dead_lettered.entry(err.kind()).or_default() += 1;
                }
                RecordOutcome::Failed(_) | RecordOutcome::NotAttempted(_) => metrics.failed += 1,
            }
        }
        for stats in &batch.stats {
            metrics.handler_ms.push(millis(stats.duration));
            metrics.event_age_ms.extend(stats.event_age.map(millis));
            metrics.follow_ups += stats.follow_ups;
            if let Some(how) = stats.duplicate_by {
                *metrics.duplicates.entry(how).or_default() += 1;
            }
        }
        metrics
    }

    /// Records set aside in the DLQ, whatever their kind.
    pub fn dead_lettered_total(&self) -> usize {
        self.dead_lettered.values().sum()
    }

    /// Duplicates skipped, however found.
    pub fn duplicates_total(&self) -> usize {
        self.duplicates.values().sum()
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// How a function's metrics are configured, from the environment the template sets.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct MetricsConfig {
    /// The CloudWatch namespace; `None` turns metrics off.
    pub namespace: Option<String>,
    /// The `Service` dimension; `None`: the consumer's name.
    pub service: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_NAME`, written as a property.
    pub function_name: Option<String>,
}

impl MetricsConfig {
    /// Reads [`NAMESPACE_VAR`], [`SERVICE_VAR`], [`DISABLED_VAR`] and the function's name.
    pub fn from_vars(vars: &Vars) -> Result<Self, EnvError> {
        let disabled = vars.parsed::<bool>(DISABLED_VAR, false)?;
        Ok(MetricsConfig {
            namespace: vars.optional(NAMESPACE_VAR).filter(|_| !disabled),
            service: vars.optional(SERVICE_VAR),
            function_name: vars.optional("AWS_LAMBDA_FUNCTION_NAME"),
        })
    }
}

/// The EMF adapter: one document per invocation (plus one per `errorKind` dead-lettered in
/// it), each written as one line.
pub struct EmfMetrics {
    service: String,
    function_name: Option<String>,
    format: Mutex<Emf>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl EmfMetrics {
    /// Metrics of the consumer `consumer` on standard output, if `config` has a namespace.
    pub fn stdout(config: &MetricsConfig, consumer: &str) -> Option<Self> {
        Self::to_writer(config, consumer, Box::new(std::io::stdout()))
    }

    /// Metrics written to `out`, if `config` has a namespace.
    pub fn to_writer(
        config: &MetricsConfig,
        consumer: &str,
        out: Box<dyn Write + Send>,
    ) -> Option<Self> {
        let namespace = config.namespace.clone()?;
        Some(EmfMetrics {
            service: config
                .service
                .clone()
                .unwrap_or_else(|| consumer.to_owned()),
            function_name: config.function_name.clone(),
            // Validation off: the entries are ours and fixed; metrique would otherwise drop an
            // entry it finds invalid, in release builds silently.
            format: Mutex::new(
                Emf::builder(namespace, vec![vec![]])
                    .skip_all_validations(true)
                    .build(),
            ),
            out: Mutex::new(out),
        })
    }

    /// The EMF documents (JSON, one per line) for `metrics`.
    pub fn documents(&self, metrics: &InvocationMetrics) -> Vec<String> {
        let mut format = self.format.lock().unwrap_or_else(|p| p.into_inner());
        let mut documents = Vec::with_capacity(1 + metrics.dead_lettered.len());
        let invocation = InvocationEntry {
            service: self.service.clone(),
            function_name: self.function_name.clone(),
            request_id: metrics.request_id.clone(),
            // The runtime sets it for each invocation; the SDK sends it on every call.
            trace_id: std::env::var("_X_AMZN_TRACE_ID").ok(),
            cold_start: u32::from(metrics.cold_start),
            records_received: metrics.received,
            records_succeeded: metrics.succeeded,
            records_failed: metrics.failed,
            records_dead_lettered: metrics.dead_lettered_total(),
            records_ignored: metrics.ignored,
            duplicates_skipped: metrics.duplicates_total(),
            duplicates_from_cache: count(metrics, DuplicateBy::Cache),
            duplicates_from_record: count(metrics, DuplicateBy::Record),
            duplicates_from_transaction: count(metrics, DuplicateBy::Transaction),
            follow_ups_published: metrics.follow_ups,
            event_age: Millis::of(&metrics.event_age_ms),
            handler_duration: Millis::of(&metrics.handler_ms),
        };
        documents.extend(render(
            &mut format,
            &RootMetric::<InvocationEntry>::new(invocation.close()),
        ));
        for (kind, n) in &metrics.dead_lettered {
            let by_kind = DeadLetteredEntry {
                service: self.service.clone(),
                error_kind: kind,
                records_dead_lettered: *n,
            };
            documents.extend(render(
                &mut format,
                &RootMetric::<DeadLetteredEntry>::new(by_kind.close()),
            ));
        }
        documents
    }
}

impl MetricsSink for EmfMetrics {
    fn record(&self, metrics: &InvocationMetrics) {
        let mut text = String::new();
        for document in self.documents(metrics) {
            text.push_str(&document);
            text.push('\n');
        }
        // One write per invocation: each document reaches the log as one whole line.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %err, "could not write the invocation's metrics");
        }
    }
}

fn count(metrics: &InvocationMetrics, how: DuplicateBy) -> usize {
    metrics.duplicates.get(&how).copied().unwrap_or(0)
}

fn render(format: &mut Emf, entry: &impl metrique::writer::Entry) -> Option<String> {
    let mut buf = Vec::new();
    match format.format(entry, &mut buf) {
        Ok(()) => String::from_utf8(buf).ok().map(|s| s.trim_end().to_owned()),
        Err(err) => {
            tracing::warn!(error = %err, "could not format the invocation's metrics");
            None
        }
    }
}

/// The invocation's document: dimension `Service`.
#[metrics(rename_all = "PascalCase", emf::dimension_sets = [["Service"]])]
struct InvocationEntry {
    service: String,
    function_name: Option<String>,
    request_id: String,
    trace_id: Option<String>,
    cold_start: u32,
    records_received: usize,
    records_succeeded: usize,
    records_failed: usize,
    records_dead_lettered: usize,
    records_ignored: usize,
    duplicates_skipped: usize,
    duplicates_from_cache: usize,
    duplicates_from_record: usize,
    duplicates_from_transaction: usize,
    follow_ups_published: usize,
    event_age: Option<Millis>,
    handler_duration: Option<Millis>,
}

/// Dead-lettered records of one kind: dimensions `Service`, `ErrorKind`.
#[metrics(rename_all = "PascalCase", emf::dimension_sets = [["Service", "ErrorKind"]])]
struct DeadLetteredEntry {
    service: String,
    error_kind: &'static str,
    records_dead_lettered: usize,
}

/// Milliseconds observed once per record: EMF's array of values, at most [`MAX_VALUES`] of
/// them (beyond that, sorted and summed into that many buckets, each with its count).
struct Millis(Vec<Observation>);

impl Millis {
    fn of(values: &[f64]) -> Option<Millis> {
        if values.is_empty() {
            return None;
        }
        if values.len() <= MAX_VALUES {
            return Some(Millis(
                values.iter().map(|v| Observation::Floating(*v)).collect(),
            ));
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let per_bucket = sorted.len().div_ceil(MAX_VALUES);
        Some(Millis(
            sorted
                .chunks(per_bucket)
                .map(|bucket| Observation::Repeated {
                    total: bucket.iter().sum(),
                    occurrences: bucket.len() as u64,
                })
                .collect(),
        ))
    }
}

impl Value for Millis {
    fn write(&self, writer: impl ValueWriter) {
        writer.metric(
            self.0.iter().copied(),
            metrique::writer::Unit::Second(metrique_writer_core::unit::NegativeScale::Milli),
            [],
            MetricFlags::empty(),
        );
    }
}

impl MetricValue for Millis {
    type Unit = metrique::unit::Millisecond;
}

impl CloseValue for Millis {
    type Closed = Millis;

    fn close(self) -> Millis {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_values_than_emf_allows_become_100_buckets_with_the_same_sum_and_count() {
        let values: Vec<f64> = (1..=250).map(f64::from).collect();
        let Some(Millis(observations)) = Millis::of(&values) else {
            panic!("values given");
        };
        assert!(observations.len() <= MAX_VALUES, "{}", observations.len());
        let (mut total, mut count) = (0.0, 0);
        for observation in observations {
            let Observation::Repeated {
                total: t,
                occurrences,
            } = observation
            else {
                panic!("buckets are repeated observations");
            };
            total += t;
            count += occurrences;
        }
        assert_eq!(count, 250);
        assert_eq!(total, values.iter().sum::<f64>());
    }

    #[test]
    fn without_a_namespace_there_are_no_metrics() {
        let vars = Vars::from_map([(SERVICE_VAR, "payment")]);
        let config = MetricsConfig::from_vars(&vars).unwrap();
        assert!(EmfMetrics::stdout(&config, "payment").is_none());

        let vars = Vars::from_map([(NAMESPACE_VAR, "orderflow"), (DISABLED_VAR, "true")]);
        let config = MetricsConfig::from_vars(&vars).unwrap();
        assert!(EmfMetrics::stdout(&config, "payment").is_none());
    }
}
