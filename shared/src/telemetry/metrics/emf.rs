//! The EMF adapter of [`MetricsSink`]: `metrique`'s EMF writer, one line per document.

use std::io::Write;
use std::sync::Mutex;

use metrique::emf::Emf;
use metrique::unit::Count;
use metrique::unit_of_work::metrics;
use metrique::writer::format::Format;
use metrique::writer::{MetricFlags, MetricValue, Observation, Value, ValueWriter};
use metrique::{CloseValue, RootMetric};

use super::{InvocationMetrics, MetricsConfig, MetricsSink};
use crate::consume::DuplicateBy;

/// EMF's limit on values in one metric's array.
const MAX_VALUES: usize = 100;

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
            trace_id: metrics.trace_id.clone(),
            cold_start: unless_zero(usize::from(metrics.cold_start)),
            records_received: metrics.received,
            records_succeeded: metrics.succeeded,
            records_failed: metrics.failed,
            records_dead_lettered: unless_zero(metrics.dead_lettered_total()),
            records_ignored: unless_zero(metrics.ignored),
            duplicates_skipped: unless_zero(metrics.duplicates_total()),
            duplicates_from_cache: unless_zero(metrics.duplicates_found_by(DuplicateBy::Cache)),
            duplicates_from_record: unless_zero(metrics.duplicates_found_by(DuplicateBy::Record)),
            duplicates_from_transaction: unless_zero(
                metrics.duplicates_found_by(DuplicateBy::Transaction),
            ),
            follow_ups_published: unless_zero(metrics.follow_ups),
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

/// A counter that most invocations leave at zero, left out of the document when it is: as in
/// Powertools, a document carries the metrics that happened. Every document is a log line
/// CloudWatch Logs bills by the byte, and these eight zeros were a third of each one (`make
/// bench`, log bytes per order). The three batch counters stay, zeros included, so a failure
/// rate or an alarm on `RecordsFailed` always has its data points.
fn unless_zero(count: usize) -> Option<usize> {
    (count > 0).then_some(count)
}

/// The invocation's document: dimension `Service`.
#[metrics(rename_all = "PascalCase", emf::dimension_sets = [["Service"]])]
struct InvocationEntry {
    service: String,
    function_name: Option<String>,
    request_id: String,
    trace_id: Option<String>,
    #[metrics(unit = Count)]
    cold_start: Option<usize>,
    #[metrics(unit = Count)]
    records_received: usize,
    #[metrics(unit = Count)]
    records_succeeded: usize,
    #[metrics(unit = Count)]
    records_failed: usize,
    #[metrics(unit = Count)]
    records_dead_lettered: Option<usize>,
    #[metrics(unit = Count)]
    records_ignored: Option<usize>,
    #[metrics(unit = Count)]
    duplicates_skipped: Option<usize>,
    #[metrics(unit = Count)]
    duplicates_from_cache: Option<usize>,
    #[metrics(unit = Count)]
    duplicates_from_record: Option<usize>,
    #[metrics(unit = Count)]
    duplicates_from_transaction: Option<usize>,
    #[metrics(unit = Count)]
    follow_ups_published: Option<usize>,
    event_age: Option<Millis>,
    handler_duration: Option<Millis>,
}

/// Dead-lettered records of one kind: dimensions `Service`, `ErrorKind`.
#[metrics(rename_all = "PascalCase", emf::dimension_sets = [["Service", "ErrorKind"]])]
struct DeadLetteredEntry {
    service: String,
    error_kind: &'static str,
    #[metrics(unit = Count)]
    records_dead_lettered: usize,
}

/// Milliseconds observed once per record: EMF's array of values, at most [`MAX_VALUES`] of
/// them (beyond that: the smallest and the largest alone, the rest sorted and summed into
/// evenly filled buckets, each with its count).
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
        let (smallest, largest) = (sorted[0], sorted[sorted.len() - 1]);
        let middle = &sorted[1..sorted.len() - 1];
        let buckets = MAX_VALUES - 2;
        let mut observations = Vec::with_capacity(MAX_VALUES);
        observations.push(Observation::Floating(smallest));
        for k in 0..buckets {
            let bucket = &middle[k * middle.len() / buckets..(k + 1) * middle.len() / buckets];
            observations.push(Observation::Repeated {
                total: bucket.iter().sum(),
                occurrences: bucket.len() as u64,
            });
        }
        observations.push(Observation::Floating(largest));
        Some(Millis(observations))
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
    fn more_values_than_emf_allows_become_100_observations_with_the_same_sum_count_and_extremes() {
        let values: Vec<f64> = (1..=250).map(f64::from).collect();
        let Some(Millis(observations)) = Millis::of(&values) else {
            panic!("values given");
        };
        assert_eq!(observations.len(), MAX_VALUES);
        let (mut total, mut count) = (0.0, 0);
        for observation in &observations {
            let (t, n) = match *observation {
                Observation::Repeated { total, occurrences } => (total, occurrences),
                Observation::Floating(v) => (v, 1),
                other => panic!("Millis writes no {other:?}"),
            };
            total += t;
            count += n;
        }
        assert_eq!(count, 250);
        assert_eq!(total, values.iter().sum::<f64>());
        // The extremes stay exact: an alarm on Maximum sees the slowest record.
        assert!(matches!(observations[0], Observation::Floating(v) if v == 1.0));
        assert!(matches!(observations[MAX_VALUES - 1], Observation::Floating(v) if v == 250.0));
        // 101 values make 100 observations too, not half as many.
        let Some(Millis(observations)) = Millis::of(&values[..101]) else {
            panic!("values given");
        };
        assert_eq!(observations.len(), MAX_VALUES);
    }
}
