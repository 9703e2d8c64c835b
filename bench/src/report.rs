//! `bench/REPORT.md`: the figures of one run, the machine, date and commit they came from, and
//! the targets beside them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::process::Command;
use std::time::Duration;

use crate::cold_start::ColdStarts;
use crate::powertools::Powertools;
use crate::record_count::RecordCounts;
use crate::size::Size;

/// The targets (issue 14); the report says for each whether this run meets it.
const COLD_START_TARGET_MS: f64 = 4.0;
const PEAK_RSS_TARGET_MIB: f64 = 15.0;
const BINARY_TARGET_MB: f64 = 6.0;
const ZIP_TARGET_MB: f64 = 3.0;
const PER_RECORD_BARE_TARGET_US: f64 = 2.0;
const PER_RECORD_IDEMPOTENT_TARGET_US: f64 = 4.0;

/// criterion's ids of the two per-record benchmarks (`shared/benches/hot_path.rs`).
const BARE: &str = "consume the batch file (10 records, from its JSON)/no idempotency";
const IDEMPOTENT: &str = "consume the batch file (10 records, from its JSON)/in-memory idempotency";
const RAW: &str = "consume the batch file (10 records, from its JSON)/raw delivery, no idempotency";
const AS_A_FUNCTION: &str = "consume the batch file (10 records, from its JSON)/no idempotency, read as lambda_runtime reads it";
/// What reading the files costs before any of our code runs.
const READ_WRAPPED: &str = "read the batch file (10 records)/SNS-wrapped, into SqsEvent";
const SKIP_WRAPPED: &str = "read the batch file (10 records)/SNS-wrapped, skipped";
const RUNTIME_READ_WRAPPED: &str =
    "read the batch file (10 records)/SNS-wrapped, into SqsEvent as lambda_runtime reads it";
const READ_RAW: &str = "read the batch file (10 records)/raw delivery, into SqsEvent";
const RUNTIME_READ_RAW: &str =
    "read the batch file (10 records)/raw delivery, into SqsEvent as lambda_runtime reads it";
const SKIP_RAW: &str = "read the batch file (10 records)/raw delivery, skipped";
/// The least any consumer of the files reads: every JSON layer once, the event skipped.
const LAYERS_WRAPPED: &str =
    "read the batch file (10 records)/SNS-wrapped, every layer read, the event skipped";
const LAYERS_RAW: &str =
    "read the batch file (10 records)/raw delivery, every layer read, the event skipped";

/// One function's figures.
pub(crate) struct Function {
    /// Its binary's name.
    pub(crate) name: String,
    /// Its cold starts.
    pub(crate) cold: ColdStarts,
    /// Its binary's size.
    pub(crate) size: Size,
}

/// Everything one run measured.
pub(crate) struct Report {
    /// Per function.
    pub(crate) functions: Vec<Function>,
    /// `lambda_runtime` alone (`bench/runtime-alone`), or why it was not measured.
    pub(crate) floor: anyhow::Result<ColdStarts>,
    /// Why some start was not counted in instructions (valgrind missing, or it failed).
    pub(crate) uncounted: Option<String>,
    /// criterion's medians, by id.
    pub(crate) consumer: BTreeMap<String, Duration>,
    /// Powertools, or why it was not measured.
    pub(crate) powertools: anyhow::Result<Powertools>,
    /// Records in the batch file.
    pub(crate) records_per_batch: u32,
    /// Per record in instructions: the SNS-wrapped file, then the raw-delivery one (or why not).
    pub(crate) record_counts: [anyhow::Result<RecordCounts>; 2],
    /// The end-to-end run, or why there was none.
    pub(crate) end_to_end: anyhow::Result<crate::e2e::EndToEnd>,
}

/// An instruction count in millions, or a dash when there is none.
fn millions(count: Option<u64>) -> String {
    count.map_or_else(|| "—".to_owned(), |n| format!("{:.2} M", n as f64 / 1e6))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

fn command(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{model}, {cores} cores, {} {}, Linux {}",
        std::env::consts::ARCH,
        std::env::consts::OS,
        command("uname", &["-r"])
    )
}

impl Report {
    fn per_record(&self, id: &str) -> Option<f64> {
        self.consumer
            .get(id)
            .map(|d| d.as_secs_f64() * 1e6 / f64::from(self.records_per_batch))
    }

    /// The report as Markdown.
    pub(crate) fn render(&self) -> anyhow::Result<String> {
        let mut out = String::new();
        let dirty = if command("git", &["status", "--porcelain"]).is_empty() {
            ""
        } else {
            " (with uncommitted changes)"
        };
        writeln!(out, "# orderflow benchmark report\n")?;
        writeln!(
            out,
            "Written by `make bench` (`orderflow-bench`); every figure below is from one run.\n"
        )?;
        writeln!(
            out,
            "- date: {}",
            command("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
        )?;
        writeln!(
            out,
            "- commit: {}{dirty}",
            command("git", &["rev-parse", "--short", "HEAD"])
        )?;
        writeln!(out, "- machine: {}", machine())?;
        writeln!(out, "- toolchain: {}\n", command("rustc", &["--version"]))?;

        writeln!(out, "## Cold start and size, per function\n")?;
        writeln!(
            out,
            "Init = process start → its first Runtime API `GET /invocation/next`, every SDK client built \
             (what Lambda reports as Init Duration); {} starts each, taken in turns (every binary once a round, \
             `lambda_runtime` alone below included), so a noisy spell falls on all alike. Peak RSS = `VmHWM` at that moment. \
             Instructions = those run from exec to that request, counted once by callgrind: unlike the times, \
             the same on a busy host as on an idle one. \
             Size = the stripped release binary; deflated = its size in the deployment zip.\n",
            self.functions.first().map_or(0, |f| f.cold.init.len())
        )?;
        writeln!(
            out,
            "| function | init median | min | p90 | instructions | peak RSS | binary | deflated |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|")?;
        for f in &self.functions {
            writeln!(
                out,
                "| {} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:.1} MiB | {:.2} MB | {:.2} MB |",
                f.name,
                ms(f.cold.median()),
                ms(f.cold.min()),
                ms(f.cold.p90()),
                millions(f.cold.instructions),
                f.cold.peak_rss_kib as f64 / 1024.0,
                mb(f.size.bytes),
                mb(f.size.deflated)
            )?;
        }
        match &self.floor {
            Ok(floor) => {
                // Each function's median above the floor's: the least and the most.
                let (lo, hi) = self
                    .functions
                    .iter()
                    .map(|f| ms(f.cold.median()) - ms(floor.median()))
                    .fold((f64::MAX, f64::MIN), |(lo, hi), d| (lo.min(d), hi.max(d)));
                writeln!(
                    out,
                    "\nFor scale, in the same run: `lambda_runtime` alone (`bench/runtime-alone`: the \
                     runtime and a handler echoing its payload, no SDK client, built as the functions \
                     are) starts in {:.2} ms (median; min {:.2} ms, p90 {:.2} ms; {} instructions; peak RSS \
                     {:.1} MiB). What a function's own init adds above it, by median: {lo:.2}–{hi:.2} ms.",
                    ms(floor.median()),
                    ms(floor.min()),
                    ms(floor.p90()),
                    millions(floor.instructions),
                    floor.peak_rss_kib as f64 / 1024.0,
                )?;
            }
            Err(why) => writeln!(out, "\n`lambda_runtime` alone not measured: {why:#}")?,
        }
        if let Some(why) = &self.uncounted {
            writeln!(out, "\nInstructions not counted (—): {why}")?;
        }

        writeln!(
            out,
            "\n## Per record, warm, beside Powertools for AWS Lambda (Python)\n"
        )?;
        writeln!(
            out,
            "The same file, `bench/sqs-batch-10.json`: {} SQS records, each an SNS notification wrapping \
             an `OrderPlaced`, from its JSON bytes to the partial batch response, a handler that does \
             nothing. orderflow: criterion (`shared/benches/hot_path.rs`), median. Powertools: \
             `BatchProcessor` + `process_partial_response` with the Parser's `SqsRecordModel` / \
             `SnsNotificationModel` and a pydantic model of `OrderPlaced` checking the same rules \
             (`bench/powertools_bench.py`), `json.loads` of the event included, median of 50 rounds.\n",
            self.records_per_batch
        )?;
        writeln!(out, "| consumer | per record |")?;
        writeln!(out, "|---|---|")?;
        let bare = self.per_record(BARE);
        let idempotent = self.per_record(IDEMPOTENT);
        let cell = |v: Option<f64>| v.map_or("not measured".into(), |v| format!("{v:.2} µs"));
        writeln!(out, "| orderflow, no idempotency | {} |", cell(bare))?;
        writeln!(
            out,
            "| orderflow, in-memory idempotency store | {} |",
            cell(idempotent)
        )?;
        writeln!(
            out,
            "| orderflow, no idempotency, raw delivery (`bench/sqs-batch-10-raw.json`: the same events as the template's raw subscriptions deliver them) | {} |",
            cell(self.per_record(RAW))
        )?;
        writeln!(
            out,
            "| orderflow, no idempotency, the batch read as `lambda_runtime` reads a function's payload (through `serde_path_to_error`, which tracks every field's path so that a bad payload's error can name it) | {} |",
            cell(self.per_record(AS_A_FUNCTION))
        )?;
        match &self.powertools {
            Ok(p) => {
                writeln!(
                    out,
                    "| Powertools (Python {}, aws-lambda-powertools {}, pydantic {}), no idempotency | {:.2} µs |",
                    p.versions.get("python").map_or("?", String::as_str),
                    p.versions
                        .get("aws-lambda-powertools")
                        .map_or("?", String::as_str),
                    p.versions.get("pydantic").map_or("?", String::as_str),
                    p.per_record_us
                )?;
                if let Some(bare) = bare {
                    writeln!(
                        out,
                        "\norderflow takes {:.1}× less time per record than Powertools.",
                        p.per_record_us / bare
                    )?;
                }
                writeln!(
                    out,
                    "\nPowertools' cold start (a fresh interpreter: imports + boto3 clients for SNS, SQS and \
                     DynamoDB, boto3 {}): {:.0} ms median of 10.",
                    p.versions.get("boto3").map_or("?", String::as_str),
                    p.cold_start_ms
                )?;
            }
            Err(why) => writeln!(out, "| Powertools | not measured: {why:#} |")?,
        }

        writeln!(
            out,
            "\nWhat reading the JSON costs before any of our code runs (serde_json, criterion, per \
             record): the SNS-wrapped file into `aws_lambda_events`' `SqsEvent` (what the runtime \
             hands a consumer) {}, the same as `lambda_runtime` reads it {}, only skipped (the \
             least any reader does: each body is a string with its event escaped twice, some 300 \
             escapes a record) {}; the raw-delivery file {}, {} and {}.",
            cell(self.per_record(READ_WRAPPED)),
            cell(self.per_record(RUNTIME_READ_WRAPPED)),
            cell(self.per_record(SKIP_WRAPPED)),
            cell(self.per_record(READ_RAW)),
            cell(self.per_record(RUNTIME_READ_RAW)),
            cell(self.per_record(SKIP_RAW)),
        )?;
        writeln!(
            out,
            "\n**Per record in instructions** (callgrind, {} warm batches of each file; a figure \
             this host's noise does not move): the batch read as `lambda_runtime` reads a payload, \
             then the consumer to the partial batch response, a no-op handler; ours = all of it \
             less the read. The in-memory store is a fresh one for each batch, so that every \
             record takes the acquire path; building it and its consumer is counted apart and \
             left out of its column. valgrind's CPU has no SHA extensions, so that column counts \
             SHA-256 (the payload hash) in portable code, where this host, Lambda's x86 hosts \
             and Graviton hash in hardware.\n",
            crate::record_count::BATCHES
        )?;
        writeln!(
            out,
            "| file | read as `lambda_runtime` does | read + consumer, no idempotency | read + consumer, in-memory store | ours, no idempotency / in-memory store | building the fresh store and consumer |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for (name, counts) in ["SNS-wrapped", "raw delivery"]
            .iter()
            .zip(&self.record_counts)
        {
            match counts {
                Ok(c) => writeln!(
                    out,
                    "| {name} | {:.1} k | {:.1} k | {:.1} k | {:.1} k / {:.1} k | {:.1} k |",
                    c.read / 1e3,
                    c.bare / 1e3,
                    c.idempotent / 1e3,
                    (c.bare - c.read) / 1e3,
                    (c.idempotent - c.read) / 1e3,
                    c.build / 1e3
                )?,
                Err(why) => writeln!(
                    out,
                    "| {name} | not counted: {} | | | | |",
                    format!("{why:#}").replace('|', "/")
                )?,
            }
        }
        let extra = match (&self.powertools, bare) {
            (Ok(p), Some(bare)) if p.per_record_us > bare => {
                Some(Duration::from_secs_f64((p.per_record_us - bare) / 1e6))
            }
            _ => None,
        };
        match &self.end_to_end {
            Ok(e2e) => crate::e2e::report::render(
                &mut out,
                e2e,
                extra,
                self.powertools.as_ref().ok().map(|p| p.cold_start_ms),
            )?,
            Err(why) => writeln!(out, "\n## End to end\n\nNot measured: {why:#}")?,
        }

        writeln!(out, "\n## Targets\n")?;
        writeln!(out, "| what | target | this run | |")?;
        writeln!(out, "|---|---|---|---|")?;
        let worst_init = self
            .functions
            .iter()
            .map(|f| ms(f.cold.median()))
            .fold(0.0, f64::max);
        let worst_rss = self
            .functions
            .iter()
            .map(|f| f.cold.peak_rss_kib as f64 / 1024.0)
            .fold(0.0, f64::max);
        let worst_size = self
            .functions
            .iter()
            .map(|f| mb(f.size.bytes))
            .fold(0.0, f64::max);
        let worst_zip = self
            .functions
            .iter()
            .map(|f| mb(f.size.deflated))
            .fold(0.0, f64::max);
        let rows: [(&str, String, f64, f64, &str); 6] = [
            (
                "cold start, slowest function's median",
                format!("≤ {COLD_START_TARGET_MS} ms"),
                worst_init,
                COLD_START_TARGET_MS,
                "ms",
            ),
            (
                "peak RSS at init, largest",
                format!("≤ {PEAK_RSS_TARGET_MIB} MiB"),
                worst_rss,
                PEAK_RSS_TARGET_MIB,
                "MiB",
            ),
            (
                "binary, largest",
                format!("≤ {BINARY_TARGET_MB} MB"),
                worst_size,
                BINARY_TARGET_MB,
                "MB",
            ),
            (
                "zip, largest",
                format!("≤ {ZIP_TARGET_MB} MB"),
                worst_zip,
                ZIP_TARGET_MB,
                "MB",
            ),
            (
                "per record, no idempotency",
                format!("≤ {PER_RECORD_BARE_TARGET_US} µs"),
                bare.unwrap_or(f64::INFINITY),
                PER_RECORD_BARE_TARGET_US,
                "µs",
            ),
            (
                "per record, in-memory idempotency",
                format!("≤ {PER_RECORD_IDEMPOTENT_TARGET_US} µs"),
                idempotent.unwrap_or(f64::INFINITY),
                PER_RECORD_IDEMPOTENT_TARGET_US,
                "µs",
            ),
        ];
        for (what, target, value, limit, unit) in rows {
            writeln!(
                out,
                "| {what} | {target} | {value:.2} {unit} | {} |",
                verdict(value <= limit)
            )?;
        }
        if let (Some(skip_wrapped), Some(skip_raw)) =
            (self.per_record(SKIP_WRAPPED), self.per_record(SKIP_RAW))
        {
            writeln!(
                out,
                "\nWhat the per-record targets are up against: serde_json merely skipping one \
                 record's JSON, keeping nothing, takes {skip_wrapped:.2} µs (SNS-wrapped) and \
                 {skip_raw:.2} µs (raw delivery) in this run, {:.0} % and {:.0} % of the \
                 {PER_RECORD_BARE_TARGET_US} µs target, before the body's own JSON (and an \
                 SNS-wrapped body's message) is read a second and third time.",
                skip_wrapped / PER_RECORD_BARE_TARGET_US * 100.0,
                skip_raw / PER_RECORD_BARE_TARGET_US * 100.0,
            )?;
        }
        if let (Some(layers_wrapped), Some(layers_raw)) =
            (self.per_record(LAYERS_WRAPPED), self.per_record(LAYERS_RAW))
        {
            writeln!(
                out,
                "\nThe least any consumer of these files reads, by serde_json: every JSON layer \
                 once (the body out of the record, an SNS body's message out of its \
                 notification, each unescaped into a copy) and the event skipped, \
                 not decoded: {layers_wrapped:.2} µs a record SNS-wrapped and {layers_raw:.2} µs \
                 raw, {:.0} % and {:.0} % of the {PER_RECORD_BARE_TARGET_US} µs target.",
                layers_wrapped / PER_RECORD_BARE_TARGET_US * 100.0,
                layers_raw / PER_RECORD_BARE_TARGET_US * 100.0,
            )?;
        }
        Ok(out)
    }
}
