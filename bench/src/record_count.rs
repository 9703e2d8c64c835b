//! The consumer's cost per record in instructions, counted by callgrind: a batch file read as
//! `lambda_runtime` reads a function's payload, then through the consumer to the partial batch
//! response, a handler that does nothing (what criterion times in `shared/benches/hot_path.rs`).
//!
//! `orderflow-bench` runs the loop itself under valgrind (`--count-batches`), once for one
//! batch and once for [`BATCHES`] more, so the difference is warm batches only: start-up,
//! reading the file and the first batch's one-time work fall out.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use aws_lambda_events::event::sqs::SqsEvent;
use clap::ValueEnum;
use orderflow::consume::{
    BatchOutcome, Consumer, HandlerError, Invocation, Message, Outcome, RecordOutcome,
};
use orderflow::event::OrderPlaced;
use orderflow::idempotency::{Idempotency, InMemoryIdempotencyStore};

use crate::callgrind;

/// Warm batches counted.
pub(crate) const BATCHES: usize = 100;

/// How far a counted batch goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// Only read, as `lambda_runtime` reads a payload (`serde_path_to_error` over serde_json).
    Read,
    /// Read, then the consumer without idempotency.
    Bare,
    /// Read, then the consumer with a fresh in-memory idempotency store, so every record takes
    /// the acquire path.
    Idempotent,
    /// Read, and build that fresh consumer and store without running them: what
    /// [`Mode::Idempotent`] spends on them, taken out of its figure.
    Build,
}

/// One file's counts, per record.
#[derive(Clone, Debug)]
pub(crate) struct RecordCounts {
    /// Reading the batch as the runtime does.
    pub(crate) read: f64,
    /// Reading it and consuming it without idempotency.
    pub(crate) bare: f64,
    /// Reading it and consuming it with the in-memory store (building a fresh consumer and
    /// store for each batch left out).
    pub(crate) idempotent: f64,
    /// Building that fresh consumer and store, per record of its batch.
    pub(crate) build: f64,
}

/// The handler: does nothing, so what is counted is the consumer's own path.
async fn noop(_: Message<OrderPlaced>, _: Arc<()>) -> Result<Outcome, HandlerError> {
    Ok(Outcome::done())
}

/// The child's side: `batches` batches of `file`, as `mode` says. Fails if a record of the
/// file is not handled, so a count is never of a path that gave up early.
pub(crate) fn run(file: &Path, mode: Mode, batches: usize) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let bare = Consumer::new("bench", ()).on(noop);
    let fresh = || {
        Consumer::new("bench", ())
            .on(noop)
            .with_idempotency(Idempotency::new(Arc::new(InMemoryIdempotencyStore::new())))
    };
    for _ in 0..batches {
        let event: SqsEvent = serde_path_to_error::deserialize(
            &mut serde_json::Deserializer::from_slice(black_box(&bytes)),
        )
        .with_context(|| format!("{} is not an SQS event", file.display()))?;
        let outcome = match mode {
            Mode::Read => {
                black_box(event);
                continue;
            }
            Mode::Build => {
                black_box((event, fresh()));
                continue;
            }
            Mode::Bare => runtime.block_on(bare.process(&event, &Invocation::default())),
            Mode::Idempotent => runtime.block_on(fresh().process(&event, &Invocation::default())),
        };
        check(&outcome, event.records.len())?;
        black_box(outcome.response());
    }
    Ok(())
}

/// Fails unless every one of the batch's `records` was handled.
fn check(outcome: &BatchOutcome, records: usize) -> anyhow::Result<()> {
    if records == 0
        || outcome.records.len() != records
        || !outcome
            .records
            .iter()
            .all(|(_, o)| matches!(o, RecordOutcome::Handled))
    {
        bail!("not every record of the batch file was handled: {outcome:?}");
    }
    Ok(())
}

/// How many records the batch file `file` holds (at least one).
pub(crate) fn records_in(file: &Path) -> anyhow::Result<usize> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let records = serde_json::from_slice::<SqsEvent>(&bytes)
        .with_context(|| format!("{} is not an SQS event", file.display()))?
        .records
        .len();
    if records == 0 {
        bail!("{} holds no record", file.display());
    }
    Ok(records)
}

/// The parent's side: counts `file` in every mode, per record of its batch.
pub(crate) fn count(file: &Path) -> anyhow::Result<RecordCounts> {
    let records = records_in(file)?;
    let per_record = |mode: Mode| -> anyhow::Result<f64> {
        let one = count_batches(file, mode, 1)?;
        let more = count_batches(file, mode, 1 + BATCHES)?;
        Ok(more.saturating_sub(one) as f64 / (BATCHES * records) as f64)
    };
    let read = per_record(Mode::Read)?;
    let build = per_record(Mode::Build)? - read;
    Ok(RecordCounts {
        read,
        bare: per_record(Mode::Bare)?,
        idempotent: per_record(Mode::Idempotent)? - build,
        build,
    })
}

/// Instructions of `orderflow-bench` itself running `batches` batches of `file` as `mode` says.
fn count_batches(file: &Path, mode: Mode, batches: usize) -> anyhow::Result<u64> {
    let this = std::env::current_exe().context("cannot find orderflow-bench itself")?;
    let mut command = callgrind::command(&this)?;
    command
        .arg("--count-batches")
        .arg(file)
        .arg("--count-mode")
        .arg(
            mode.to_possible_value()
                .context("every mode has a name")?
                .get_name(),
        )
        .arg("--count-repeat")
        .arg(batches.to_string());
    callgrind::count(
        command,
        &format!("{batches} batches of {} ({mode:?})", file.display()),
        callgrind::Ending::Success,
    )
}
